//! Statistics and exports over jobs: counts by status, throughput per minute, finished jobs by time.

use crate::jobs::{job_from_row, JOB_COLS};
use crate::{Result, Store};
use remora_domain::{Job, JobStatus};
use sqlx::Row;

#[derive(Debug, Clone, serde::Serialize)]
pub struct MinuteCount {
    /// Start of the minute, epoch ms.
    pub minute: i64,
    pub completed: i64,
    /// failed + timed_out
    pub failed: i64,
    pub canceled: i64,
    pub total: i64,
}

impl Store {
    pub async fn count_jobs_by_status(&self) -> Result<Vec<(JobStatus, i64)>> {
        let rows = sqlx::query("SELECT status, COUNT(*) FROM jobs GROUP BY status")
            .fetch_all(&self.read)
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let s: String = r.try_get(0)?;
            let n: i64 = r.try_get(1)?;
            if let Ok(st) = s.parse() {
                out.push((st, n));
            }
        }
        Ok(out)
    }

    /// Finished jobs per minute since `since_ms`.
    pub async fn throughput(&self, since_ms: i64) -> Result<Vec<MinuteCount>> {
        let rows = sqlx::query(
            "SELECT (finished_at / 60000) * 60000 AS minute,
                    SUM(CASE WHEN status = $2 THEN 1 ELSE 0 END) AS completed,
                    SUM(CASE WHEN status IN ($3, $4) THEN 1 ELSE 0 END) AS failed,
                    SUM(CASE WHEN status = $5 THEN 1 ELSE 0 END) AS canceled,
                    COUNT(*) AS total
             FROM jobs WHERE finished_at IS NOT NULL AND finished_at >= $1
             GROUP BY (finished_at / 60000) * 60000 ORDER BY minute",
        )
        .bind(since_ms)
        .bind(JobStatus::Completed.as_str())
        .bind(JobStatus::Failed.as_str())
        .bind(JobStatus::TimedOut.as_str())
        .bind(JobStatus::Canceled.as_str())
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MinuteCount {
                    minute: r.try_get(0)?,
                    completed: r.try_get(1)?,
                    failed: r.try_get(2)?,
                    canceled: r.try_get(3)?,
                    total: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Jobs that finished in `[from_ms, to_ms)`, oldest first, `limit` after `after_id`
    /// (keyset pagination for exports).
    pub async fn finished_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<Job>> {
        let (cond, a_ms, a_id) = match after {
            Some((ms, id)) => (
                "AND (finished_at > $3 OR (finished_at = $3 AND id > $4))",
                ms,
                id,
            ),
            None => ("AND $3 = $3 AND $4 = $4", 0, String::new()),
        };
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLS} FROM jobs WHERE finished_at >= $1 AND finished_at < $2 {cond} ORDER BY finished_at, id LIMIT {}",
            limit.clamp(1, 10_000)
        ))
        .bind(from_ms)
        .bind(to_ms)
        .bind(a_ms)
        .bind(a_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(job_from_row).collect()
    }
}
