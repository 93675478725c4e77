//! Retention: the policy (days per final status, largest output per job, export first), stored in `settings`, and purges in small batches.

use crate::jobs::{job_from_row, JOB_COLS};
use crate::{Result, Store, StoreError};
use remora_domain::{Job, JobStatus};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// The `settings` key of the retention policy.
const KEY: &str = "retention";

/// Longest retention a policy may name (100 years), days.
pub const MAX_DAYS: i64 = 36_500;
/// Smallest per-job output cap, bytes (a cap below a line of output is a mistake).
pub const MIN_OUTPUT_BYTES: i64 = 1024;

/// Days finished jobs are kept, per final status; `null` keeps them forever.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobRetention {
    pub completed: Option<i64>,
    pub failed: Option<i64>,
    pub timed_out: Option<i64>,
    pub canceled: Option<i64>,
}

impl JobRetention {
    pub fn days(&self, s: JobStatus) -> Option<i64> {
        match s {
            JobStatus::Completed => self.completed,
            JobStatus::Failed => self.failed,
            JobStatus::TimedOut => self.timed_out,
            JobStatus::Canceled => self.canceled,
            JobStatus::Queued | JobStatus::Running => None,
        }
    }
}

/// The retention policy. The default keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Finished jobs older than this many days (by `finished_at`) are deleted with their output.
    #[serde(default)]
    pub jobs_days: JobRetention,
    /// Output kept per finished job, bytes (the first ones); the rest is
    /// dropped when the output is packed and the job marked `truncated`.
    /// `null`: all of it.
    #[serde(default)]
    pub output_max_bytes: Option<i64>,
    /// Append each job to `<REMORA_RETENTION_EXPORT_DIR>/remora-jobs-<day>.ndjson`
    /// (the `/jobs/export` line format) before deleting it.
    #[serde(default)]
    pub export_before_delete: bool,
}

impl RetentionPolicy {
    /// A clear message for the first unacceptable field.
    pub fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        for (field, d) in [
            ("jobs_days.completed", self.jobs_days.completed),
            ("jobs_days.failed", self.jobs_days.failed),
            ("jobs_days.timed_out", self.jobs_days.timed_out),
            ("jobs_days.canceled", self.jobs_days.canceled),
        ] {
            if let Some(d) = d {
                if !(1..=MAX_DAYS).contains(&d) {
                    return Err((
                        field,
                        format!("{field} must be between 1 and {MAX_DAYS} days, or null to keep forever"),
                    ));
                }
            }
        }
        if let Some(b) = self.output_max_bytes {
            if b < MIN_OUTPUT_BYTES {
                return Err((
                    "output_max_bytes",
                    format!("output_max_bytes must be at least {MIN_OUTPUT_BYTES}, or null to keep all output"),
                ));
            }
        }
        Ok(())
    }
}

/// One purge batch: the jobs deleted (as they were, for the export).
#[derive(Debug, Clone, Default)]
pub struct PurgeBatch {
    pub jobs: Vec<Job>,
}

impl Store {
    /// A JSON setting, if set.
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.read)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(remora_domain::time::now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn retention_policy(&self) -> Result<RetentionPolicy> {
        match self.setting(KEY).await? {
            Some(v) => serde_json::from_str(&v)
                .map_err(|e| StoreError::Corrupt(format!("retention setting: {e}"))),
            None => Ok(RetentionPolicy::default()),
        }
    }

    pub async fn set_retention_policy(&self, p: &RetentionPolicy) -> Result<()> {
        let v = serde_json::to_string(p).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.set_setting(KEY, &v).await
    }

    /// The next up to `limit` jobs of `status` that finished before
    /// `before_ms`, oldest first (read pool; nothing is deleted).
    pub async fn purge_candidates(
        &self,
        status: JobStatus,
        before_ms: i64,
        limit: i64,
    ) -> Result<Vec<Job>> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLS} FROM jobs WHERE status = $1 AND finished_at < $2 ORDER BY finished_at LIMIT {}",
            limit.clamp(1, 10_000)
        ))
        .bind(status.as_str())
        .bind(before_ms)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Delete these jobs and their output in one write transaction (three
    /// statements), if they are still of `status` and finished before
    /// `before_ms`. Returns how many jobs went.
    pub async fn purge_jobs(
        &self,
        ids: &[String],
        status: JobStatus,
        before_ms: i64,
    ) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let list = (0..ids.len())
            .map(|i| format!("${}", i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        let mut n = 0;
        for (i, sql) in [
            format!("DELETE FROM job_output WHERE job_id IN (SELECT id FROM jobs WHERE status = $1 AND finished_at < $2 AND id IN ({list}))"),
            format!("DELETE FROM job_output_packed WHERE job_id IN (SELECT id FROM jobs WHERE status = $1 AND finished_at < $2 AND id IN ({list}))"),
            format!("DELETE FROM jobs WHERE status = $1 AND finished_at < $2 AND id IN ({list})"),
        ]
        .iter()
        .enumerate()
        {
            let mut q = sqlx::query(sql).bind(status.as_str()).bind(before_ms);
            for id in ids {
                q = q.bind(id);
            }
            let r = q.execute(&mut *tx).await?;
            if i == 2 {
                n = r.rows_affected();
            }
        }
        tx.commit().await?;
        Ok(n)
    }
}

impl Store {
    /// Tests and benchmarks: move a finished job's `finished_at` (to make it old).
    #[doc(hidden)]
    pub async fn set_finished_at(&self, job_id: &str, ms: i64) -> Result<()> {
        sqlx::query("UPDATE jobs SET finished_at = $1 WHERE id = $2 AND finished_at IS NOT NULL")
            .bind(ms)
            .bind(job_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }
}
