//! Job output: the stdout/stderr chunks a job wrote, stored bytes-exact in order.

use crate::{map_unique, Result, Store, StoreError};
use remora_domain::Stream;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct OutputChunk {
    pub seq: i64,
    pub stream: Stream,
    pub data: Vec<u8>,
}

impl Store {
    /// Append output chunks and update the job's byte counters, atomically.
    pub async fn append_output(
        &self,
        job_id: &str,
        chunks: &[OutputChunk],
        stdout_bytes: i64,
        stderr_bytes: i64,
        truncated: bool,
    ) -> Result<()> {
        let now = remora_domain::time::now_ms();
        let mut tx = self.write.begin().await?;
        for c in chunks {
            sqlx::query("INSERT INTO job_output (job_id, seq, stream, data, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(job_id)
                .bind(c.seq)
                .bind(c.stream.code())
                .bind(c.data.clone())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_unique)?;
        }
        sqlx::query(
            "UPDATE jobs SET stdout_bytes = $1, stderr_bytes = $2, truncated = $3 WHERE id = $4",
        )
        .bind(stdout_bytes)
        .bind(stderr_bytes)
        .bind(truncated as i64)
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The stored chunks of a job in order, optionally after `after_seq`.
    pub async fn output_chunks(&self, job_id: &str, after_seq: i64) -> Result<Vec<OutputChunk>> {
        let rows = sqlx::query(
            "SELECT seq, stream, data FROM job_output WHERE job_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(job_id)
        .bind(after_seq)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let code: i64 = r.try_get(1)?;
                Ok(OutputChunk {
                    seq: r.try_get(0)?,
                    stream: Stream::from_code(code)
                        .ok_or_else(|| StoreError::Corrupt(format!("stream {code}")))?,
                    data: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// The full stored stdout and stderr of a job, bytes-exact.
    pub async fn job_output(&self, job_id: &str) -> Result<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        let mut err = Vec::new();
        for c in self.output_chunks(job_id, -1).await? {
            match c.stream {
                Stream::Stdout => out.extend_from_slice(&c.data),
                Stream::Stderr => err.extend_from_slice(&c.data),
            }
        }
        Ok((out, err))
    }
}
