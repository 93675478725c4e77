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
            // The heartbeat is the database's clock, never the worker's (see `heartbeat_worker`).
            &format!(
                "INSERT INTO workers (id, hostname, version, concurrency, running, started_at, last_heartbeat_at, status)
                 VALUES ($1, $2, $3, $4, $5, $6, {}, $7)",
                self.db_now_ms()
            ),
        )
        .bind(&w.id)
        .bind(&w.hostname)
        .bind(&w.version)
        .bind(w.concurrency)
        .bind(w.running)
        .bind(w.started_at)
        .bind(&w.status)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Records a heartbeat at the database's clock: the reaper compares it with the same clock
    /// (`mark_silent_workers`), so a worker or API whose clock is off never marks a live worker
    /// lost, nor keeps a dead one alive.
    pub async fn heartbeat_worker(&self, id: &str, running: i64, status: &str) -> Result<bool> {
        let r = sqlx::query(&format!(
            "UPDATE workers SET last_heartbeat_at = {}, running = $1, status = $2 WHERE id = $3",
            self.db_now_ms()
        ))
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

    /// Mark workers whose last heartbeat is more than `down_after` old, by the database's clock
    /// (the clock heartbeats are written with), as down and return their ids.
    pub async fn mark_silent_workers(
        &self,
        down_after: std::time::Duration,
    ) -> Result<Vec<String>> {
        let after = i64::try_from(down_after.as_millis()).unwrap_or(i64::MAX);
        let now = self.db_now_ms();
        let rows = sqlx::query(&format!(
            "SELECT id FROM workers WHERE status <> 'down' AND last_heartbeat_at < {now} - $1"
        ))
        .bind(after)
        .fetch_all(&self.read)
        .await?;
        let mut ids = Vec::new();
        for r in rows {
            let id: String = r.try_get(0)?;
            let u = sqlx::query(&format!("UPDATE workers SET status = 'down' WHERE id = $1 AND status <> 'down' AND last_heartbeat_at < {now} - $2"))
                .bind(&id)
                .bind(after)
                .execute(&self.write)
                .await?;
            if u.rows_affected() == 1 {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// A write that changes nothing, to learn whether the database takes
    /// writes now (the reaper's health probe: on SQLite a held write lock
    /// fails it, as it fails heartbeats).
    pub async fn probe_write(&self) -> Result<()> {
        sqlx::query("UPDATE workers SET status = status WHERE id = ''")
            .execute(&self.write)
            .await?;
        Ok(())
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
