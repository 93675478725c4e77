//! Benchmark fixtures (feature `bench`): bulk-filling the jobs table; not part of the production API.

use crate::{Backend, Result, Store};
use remora_domain::{JobKind, JobStatus};

impl Store {
    /// Benchmarks only: fill `jobs` with `n` finished jobs spread over two
    /// Benchmarks only: fill `jobs` with `n` finished jobs spread over two
    /// servers and the statuses, in one statement per backend.
    pub async fn bench_fill_jobs(
        &self,
        n: i64,
        server_a: &str,
        server_b: &str,
        analyze_sqlite: bool,
    ) -> Result<()> {
        let series = match self.backend {
            Backend::Sqlite => "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $1) SELECT x FROM c",
            Backend::Postgres => "SELECT generate_series(1, $1) AS x",
        };
        let sql = format!(
            "INSERT INTO jobs (id, kind, command, args, server_id, status, priority, timeout_secs, attempt, max_retries, cancel_requested, created_at, started_at, finished_at, exit_code, stdout_bytes, stderr_bytes, truncated)
             SELECT 'bench-' || CAST(x AS TEXT), $4, CASE WHEN x % 10 = 0 THEN 'deploy app ' || CAST(x AS TEXT) ELSE 'echo ' || CAST(x AS TEXT) END, '[]',
                    CASE WHEN x % 4 = 0 THEN $2 ELSE $3 END,
                    CASE x % 5 WHEN 0 THEN $5 WHEN 1 THEN $6 ELSE $7 END,
                    5, 0, 1, 0, 0, 1700000000000 + x * 1000, 1700000000000 + x * 1000, 1700000000500 + x * 1000, 0, 10, 0, 0
             FROM ({series}) s"
        );
        sqlx::query(&sql)
            .bind(n)
            .bind(server_a)
            .bind(server_b)
            .bind(JobKind::Command.as_str())
            .bind(JobStatus::Failed.as_str())
            .bind(JobStatus::Canceled.as_str())
            .bind(JobStatus::Completed.as_str())
            .execute(&self.write)
            .await?;
        // As the API's search indexer would have by the time anyone searches.
        self.index_search_backlog().await?;
        // As autovacuum would have done on PostgreSQL. SQLite gathers no
        // statistics by itself: measured as a real database would be, unless
        // `analyze_sqlite`.
        if self.backend == Backend::Postgres {
            sqlx::query("ANALYZE jobs").execute(&self.write).await?;
        } else if analyze_sqlite {
            sqlx::query("ANALYZE").execute(&self.write).await?;
        }
        Ok(())
    }
}

impl Store {
    /// Benchmarks only: give every job whose id starts with `bench-` one
    /// stdout chunk (stream code 1), chosen round-robin from `chunks` (realistic log text the
    /// caller generated), in one statement.
    pub async fn bench_fill_output(&self, chunks: &[Vec<u8>]) -> Result<()> {
        sqlx::query("DROP TABLE IF EXISTS bench_chunks")
            .execute(&self.write)
            .await?;
        sqlx::query("CREATE TABLE bench_chunks (k BIGINT PRIMARY KEY, data BYTEA NOT NULL)")
            .execute(&self.write)
            .await?;
        for (k, c) in chunks.iter().enumerate() {
            sqlx::query("INSERT INTO bench_chunks (k, data) VALUES ($1, $2)")
                .bind(k as i64)
                .bind(c.clone())
                .execute(&self.write)
                .await?;
        }
        let n = chunks.len().max(1) as i64;
        let sql = format!(
            "INSERT INTO job_output (job_id, seq, stream, data, created_at)
             SELECT j.id, 1, 1, c.data, j.finished_at FROM jobs j
             JOIN bench_chunks c ON c.k = CAST(substr(j.id, 7) AS BIGINT) % {n}
             WHERE j.id LIKE 'bench-%'"
        );
        sqlx::query(&sql).execute(&self.write).await?;
        sqlx::query("DROP TABLE bench_chunks")
            .execute(&self.write)
            .await?;
        Ok(())
    }
}

impl Store {
    /// Benchmarks only: `VACUUM` the SQLite file (checkpointing the WAL first) to see how much
    /// space a purge freed; `VACUUM` on PostgreSQL.
    pub async fn vacuum_for_bench(&self) -> Result<()> {
        if self.backend == Backend::Sqlite {
            sqlx::query("VACUUM").execute(&self.write).await?;
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.write)
                .await?;
        } else {
            sqlx::query("VACUUM").execute(&self.write).await?;
        }
        Ok(())
    }
}

impl Store {
    /// Benchmarks only: run one statement on the writer (e.g. to measure without a trigger).
    pub async fn bench_exec(&self, sql: &str) -> Result<()> {
        sqlx::query(sql).execute(&self.write).await?;
        Ok(())
    }
}
