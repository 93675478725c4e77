//! Workers: registration, heartbeats, staleness and the running jobs of lost workers.

use crate::{Result, Store};
use remora_domain::{ErrorCode, JobStatus};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct WorkerRow {
    pub id: String,
    pub hostname: String,
    pub version: String,
    pub concurrency: i64,
    pub running: i64,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: i64,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_heartbeat_at: i64,
    pub status: String,
}

fn worker_from_row(r: &AnyRow) -> Result<WorkerRow> {
    Ok(WorkerRow {
        id: r.try_get("id")?,
        hostname: r.try_get("hostname")?,
        version: r.try_get("version")?,
        concurrency: r.try_get("concurrency")?,
        running: r.try_get("running")?,
        started_at: r.try_get("started_at")?,
        last_heartbeat_at: r.try_get("last_heartbeat_at")?,
        status: r.try_get("status")?,
    })
}

impl Store {
    pub async fn register_worker(&self, w: &WorkerRow) -> Result<()> {
        // A worker that (re)starts holds no job yet: whatever its id still has `running` belonged
        // to an earlier process with that id which died (kill -9, crash, reboot) before the reaper
        // saw it go down; once the new row says `up`, the reaper never would.
        let msg = format!(
            "worker {} restarted while running this job; its remote processes are killed by the job wrapper when the SSH session drops",
            w.id
        );
        sqlx::query(
            "UPDATE jobs SET status = $4, error = $1, error_code = $5, finished_at = $2
             WHERE worker_id = $3 AND status = $6",
        )
        .bind(&msg)
        .bind(remora_domain::time::now_ms())
        .bind(&w.id)
        .bind(JobStatus::Failed.as_str())
        .bind(ErrorCode::WorkerLost.as_str())
        .bind(JobStatus::Running.as_str())
        .execute(&self.write)
        .await?;
        sqlx::query("DELETE FROM workers WHERE id = $1")
            .bind(&w.id)
            .execute(&self.write)
            .await?;
        sqlx::query(
            "INSERT INTO workers (id, hostname, version, concurrency, running, started_at, last_heartbeat_at, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&w.id)
        .bind(&w.hostname)
        .bind(&w.version)
        .bind(w.concurrency)
        .bind(w.running)
        .bind(w.started_at)
        .bind(w.last_heartbeat_at)
        .bind(&w.status)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn heartbeat_worker(&self, id: &str, running: i64, status: &str) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE workers SET last_heartbeat_at = $1, running = $2, status = $3 WHERE id = $4",
        )
        .bind(remora_domain::time::now_ms())
        .bind(running)
        .bind(status)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn list_workers(&self) -> Result<Vec<WorkerRow>> {
        let rows = sqlx::query("SELECT id, hostname, version, concurrency, running, started_at, last_heartbeat_at, status FROM workers ORDER BY started_at DESC")
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(worker_from_row).collect()
    }

    /// Mark workers whose last heartbeat is older than `cutoff_ms` as down and
    /// return their ids.
    pub async fn mark_stale_workers(&self, cutoff_ms: i64) -> Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT id FROM workers WHERE status <> 'down' AND last_heartbeat_at < $1")
                .bind(cutoff_ms)
                .fetch_all(&self.read)
                .await?;
        let mut ids = Vec::new();
        for r in rows {
            let id: String = r.try_get(0)?;
            let u = sqlx::query("UPDATE workers SET status = 'down' WHERE id = $1 AND status <> 'down' AND last_heartbeat_at < $2")
                .bind(&id)
                .bind(cutoff_ms)
                .execute(&self.write)
                .await?;
            if u.rows_affected() == 1 {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Running jobs held by a worker that is not `up` (down or unknown).
    pub async fn orphaned_jobs(&self) -> Result<Vec<(String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT j.id, j.worker_id FROM jobs j LEFT JOIN workers w ON w.id = j.worker_id
             WHERE j.status = $1 AND (w.id IS NULL OR w.status = 'down')",
        )
        .bind(JobStatus::Running.as_str())
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }
}
