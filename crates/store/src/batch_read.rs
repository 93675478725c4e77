//! Reading a batch for its page: counts and exit codes in one GROUP BY, the host grid
//! filtered and paged in SQL, and hosts with their output page by page (two queries a page).

use crate::output::{unpack, OutputChunk};
use crate::{Result, Store, StoreError};
use remora_domain::batch::Counts;
use remora_domain::{JobStatus, Stream};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Counts of a batch's hosts, computed in SQL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchTally {
    pub counts: Counts,
    /// Hosts per exit code (`None`: no exit code).
    pub exit_codes: BTreeMap<Option<i64>, u64>,
    /// The earliest `created_at` of its jobs (None when it has none).
    pub first_created_at: Option<i64>,
}

/// One host of the grid: only the columns the dashboard shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchCellRow {
    pub server_id: String,
    /// None when the server was deleted since.
    pub server_name: Option<String>,
    pub job_id: String,
    pub status: JobStatus,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
}

/// Which hosts of the grid, in submission order.
#[derive(Debug, Clone, Default)]
pub struct CellFilter {
    pub status: Option<JobStatus>,
    /// Case-insensitive substring of the server's name or id.
    pub search: Option<String>,
    pub offset: i64,
    /// At most this many (0: none, only the count).
    pub limit: i64,
}

/// Most hosts per [`Store::batch_outputs_page`].
pub const MAX_OUTPUT_PAGE: i64 = 1_000;

/// A host of a batch with its full stored output, bytes-exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostOutput {
    pub job_id: String,
    pub server_id: String,
    pub server_name: Option<String>,
    pub status: JobStatus,
    pub exit_code: Option<i64>,
    pub error_code: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

fn status_of(s: &str) -> Result<JobStatus> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("job status `{s}`")))
}

/// `WHERE` of a batch's hosts with an optional status and search; binds from `$1`.
fn cell_where(status: Option<JobStatus>, search: Option<&str>) -> (String, Vec<String>) {
    let mut sql = String::from("j.batch_id = $1");
    let mut binds = Vec::new();
    if let Some(s) = status {
        binds.push(s.as_str().to_string());
        sql.push_str(&format!(" AND j.status = ${}", binds.len() + 1));
    }
    if let Some(q) = search.map(str::trim).filter(|q| !q.is_empty()) {
        binds.push(crate::jobs::like_pattern(q));
        let n = binds.len() + 1;
        sql.push_str(&format!(
            " AND (LOWER(j.server_id) LIKE ${n} ESCAPE '\\' OR LOWER(COALESCE(s.name, '')) LIKE ${n} ESCAPE '\\')"
        ));
    }
    (sql, binds)
}

impl Store {
    /// Host counts by status, hosts per exit code and the first job's time, in one query.
    pub async fn batch_tally(&self, id: &str) -> Result<BatchTally> {
        let rows = sqlx::query(
            "SELECT status, exit_code, COUNT(*), MIN(created_at) FROM jobs WHERE batch_id = $1 GROUP BY status, exit_code",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        let mut t = BatchTally::default();
        for r in rows {
            let s: String = r.try_get(0)?;
            let code: Option<i64> = r.try_get(1)?;
            let n = r.try_get::<i64, _>(2)? as u64;
            let first: i64 = r.try_get(3)?;
            let c = &mut t.counts;
            match status_of(&s)? {
                JobStatus::Queued => c.queued += n,
                JobStatus::Running => c.running += n,
                JobStatus::Completed => c.completed += n,
                JobStatus::Failed => c.failed += n,
                JobStatus::Canceled => c.canceled += n,
                JobStatus::TimedOut => c.timed_out += n,
            }
            *t.exit_codes.entry(code).or_insert(0) += n;
            t.first_created_at = Some(t.first_created_at.map_or(first, |f| f.min(first)));
        }
        Ok(t)
    }

    /// The grid: a batch's hosts matching `f` in submission order, from `f.offset`, at most
    /// `f.limit`, and how many match in all.
    pub async fn batch_cells(&self, id: &str, f: &CellFilter) -> Result<(i64, Vec<BatchCellRow>)> {
        let (where_sql, binds) = cell_where(f.status, f.search.as_deref());
        let from = "jobs j LEFT JOIN servers s ON s.id = j.server_id";
        let count_sql = format!("SELECT COUNT(*) FROM {from} WHERE {where_sql}");
        let mut count = sqlx::query(&count_sql).bind(id);
        for b in &binds {
            count = count.bind(b.clone());
        }
        let total: i64 = count.fetch_one(&self.read).await?.try_get(0)?;
        let limit = f.limit;
        if limit <= 0 || f.offset >= total {
            return Ok((total, Vec::new()));
        }
        let sql = format!(
            "SELECT j.server_id, s.name, j.id, j.status, j.exit_code, j.error FROM {from} WHERE {where_sql}
             ORDER BY j.created_at, j.id LIMIT {limit} OFFSET {}",
            f.offset.max(0)
        );
        let mut q = sqlx::query(&sql).bind(id);
        for b in &binds {
            q = q.bind(b.clone());
        }
        let rows = q.fetch_all(&self.read).await?;
        let cells = rows
            .iter()
            .map(|r| {
                let s: String = r.try_get(3)?;
                Ok(BatchCellRow {
                    server_id: r.try_get(0)?,
                    server_name: r.try_get(1)?,
                    job_id: r.try_get(2)?,
                    status: status_of(&s)?,
                    exit_code: r.try_get(4)?,
                    error: r.try_get(5)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok((total, cells))
    }

    /// Up to `limit` hosts of a batch (optionally in one status) after the
    /// `after` key (`created_at`, job id), in submission order, each with its
    /// full stored output: one query for the jobs, one for their output rows
    /// and one for their packed output, whatever the page size.
    pub async fn batch_outputs_page(
        &self,
        id: &str,
        status: Option<JobStatus>,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<HostOutput>> {
        let (mut where_sql, binds) = cell_where(status, None);
        let n = binds.len() + 2;
        if after.is_some() {
            where_sql.push_str(&format!(
                " AND (j.created_at > ${n} OR (j.created_at = ${n} AND j.id > ${}))",
                n + 1
            ));
        }
        let sql = format!(
            "SELECT j.id, j.server_id, s.name, j.status, j.exit_code, j.error_code, j.created_at, j.started_at, j.finished_at
             FROM jobs j LEFT JOIN servers s ON s.id = j.server_id WHERE {where_sql}
             ORDER BY j.created_at, j.id LIMIT {}",
            limit.clamp(1, MAX_OUTPUT_PAGE)
        );
        let mut q = sqlx::query(&sql).bind(id);
        for b in &binds {
            q = q.bind(b.clone());
        }
        if let Some((at, job)) = &after {
            q = q.bind(*at).bind(job.clone());
        }
        let rows = q.fetch_all(&self.read).await?;
        let mut hosts: Vec<HostOutput> = rows
            .iter()
            .map(|r| {
                let s: String = r.try_get(3)?;
                Ok(HostOutput {
                    job_id: r.try_get(0)?,
                    server_id: r.try_get(1)?,
                    server_name: r.try_get(2)?,
                    status: status_of(&s)?,
                    exit_code: r.try_get(4)?,
                    error_code: r.try_get(5)?,
                    created_at: r.try_get(6)?,
                    started_at: r.try_get(7)?,
                    finished_at: r.try_get(8)?,
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                })
            })
            .collect::<Result<_>>()?;
        if hosts.is_empty() {
            return Ok(hosts);
        }
        // Rows first, packed second, as Store::output_chunks reads them, so a
        // page racing the packing of a job sees each chunk once.
        let marks = (1..=hosts.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let loose_sql = format!(
            "SELECT job_id, seq, stream, data FROM job_output WHERE job_id IN ({marks}) ORDER BY job_id, seq"
        );
        let mut q = sqlx::query_as::<_, (String, i64, i64, Vec<u8>)>(&loose_sql);
        for h in &hosts {
            q = q.bind(h.job_id.clone());
        }
        let loose = q.fetch_all(&self.read).await?;
        let packed_sql = format!(
            "SELECT job_id, data, raw_bytes, chunks FROM job_output_packed WHERE job_id IN ({marks})"
        );
        let mut p = sqlx::query_as::<_, (String, Vec<u8>, i64, i64)>(&packed_sql);
        for h in &hosts {
            p = p.bind(h.job_id.clone());
        }
        let packed = p.fetch_all(&self.read).await?;
        let mut chunks: HashMap<String, Vec<OutputChunk>> = HashMap::new();
        for (job, seq, code, data) in loose {
            let stream = Stream::from_code(code)
                .ok_or_else(|| StoreError::Corrupt(format!("stream {code}")))?;
            chunks
                .entry(job)
                .or_default()
                .push(OutputChunk { seq, stream, data });
        }
        if !packed.is_empty() {
            let unpacked = tokio::task::spawn_blocking(move || {
                packed
                    .into_iter()
                    .map(|(job, data, raw, n)| Ok((job, unpack(&data, raw, n)?)))
                    .collect::<Result<Vec<_>>>()
            })
            .await
            .map_err(|e| StoreError::Corrupt(e.to_string()))??;
            for (job, more) in unpacked {
                let have = chunks.entry(job).or_default();
                let seen: HashSet<i64> = have.iter().map(|c| c.seq).collect();
                have.extend(more.into_iter().filter(|c| !seen.contains(&c.seq)));
                have.sort_by_key(|c| c.seq);
            }
        }
        for h in &mut hosts {
            for c in chunks.remove(&h.job_id).unwrap_or_default() {
                match c.stream {
                    Stream::Stdout => h.stdout.extend_from_slice(&c.data),
                    Stream::Stderr => h.stderr.extend_from_slice(&c.data),
                }
            }
        }
        Ok(hosts)
    }
}
