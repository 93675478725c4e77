//! Batches: a multi-server submission's policy row, its counts, and stopping it
//! (fail threshold reached, or canceled), in the transaction of the final status.

use crate::sql::Conn;
use crate::{Backend, Result, Store};
use remora_domain::batch::{BatchStatus, Counts, OnFail};
use remora_domain::{ErrorCode, Job, JobStatus};
use sqlx::Row;

/// A batch as stored; `max_parallel` and `fail_threshold` are host counts (0 = none).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct BatchRow {
    pub id: String,
    pub total: i64,
    pub max_parallel: i64,
    pub fail_threshold: i64,
    pub on_fail: OnFail,
    /// `running`, `stopped` or `canceled` (completed/failed derive from the jobs).
    pub state: BatchStatus,
    pub source_batch_id: Option<String>,
    pub created_at: i64,
    pub stopped_at: Option<i64>,
}

const BATCH_COLS: &str = "id, total, max_parallel, fail_threshold, on_fail, state, source_batch_id, created_at, stopped_at";

fn batch_from_row(r: &sqlx::any::AnyRow) -> Result<BatchRow> {
    let on_fail: String = r.try_get(4)?;
    let state: String = r.try_get(5)?;
    Ok(BatchRow {
        id: r.try_get(0)?,
        total: r.try_get(1)?,
        max_parallel: r.try_get(2)?,
        fail_threshold: r.try_get(3)?,
        on_fail: OnFail::parse(&on_fail)
            .ok_or_else(|| crate::StoreError::Corrupt(format!("on_fail `{on_fail}`")))?,
        state: BatchStatus::parse(&state)
            .ok_or_else(|| crate::StoreError::Corrupt(format!("batch state `{state}`")))?,
        source_batch_id: r.try_get(6)?,
        created_at: r.try_get(7)?,
        stopped_at: r.try_get(8)?,
    })
}

/// Cancel the batch's queued jobs (`batch_stopped`) and mark it `state`; with
/// `abort`, ask its running jobs to stop too. Runs inside the caller's transaction.
async fn stop_in(
    conn: &mut Conn<'_>,
    batch_id: &str,
    state: BatchStatus,
    abort: bool,
) -> Result<()> {
    let now = remora_domain::time::now_ms();
    conn.execute(
        "UPDATE batches SET state = $1, stopped_at = $2 WHERE id = $3 AND state = $4",
        &[
            state.as_str().into(),
            now.into(),
            batch_id.into(),
            BatchStatus::Running.as_str().into(),
        ],
    )
    .await?;
    let why = format!("not started: the batch was {}", state.as_str());
    conn.execute(
        "UPDATE jobs SET status = $1, cancel_requested = 1, finished_at = $2, error = $3, error_code = $4
         WHERE batch_id = $5 AND status = $6",
        &[
            JobStatus::Canceled.as_str().into(),
            now.into(),
            (&why).into(),
            ErrorCode::BatchStopped.as_str().into(),
            batch_id.into(),
            JobStatus::Queued.as_str().into(),
        ],
    )
    .await?;
    if abort {
        conn.execute(
            "UPDATE jobs SET cancel_requested = 1 WHERE batch_id = $1 AND status = $2",
            &[batch_id.into(), JobStatus::Running.as_str().into()],
        )
        .await?;
    }
    Ok(())
}

/// After a job of `batch_id` reached a final status: stop the batch if its
/// failed and timed-out hosts reach the threshold. Inside the caller's
/// transaction, with the batch row locked on PostgreSQL, so exactly the
/// finish that crosses the threshold stops it.
pub(crate) async fn after_final(
    conn: &mut Conn<'_>,
    backend: Backend,
    batch_id: &str,
) -> Result<bool> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let row = conn
        .fetch_optional(
            &format!("SELECT fail_threshold, on_fail, state FROM batches WHERE id = $1{lock}"),
            &[batch_id.into()],
            |r| {
                Ok((
                    r.get::<i64>(0usize)?,
                    r.get::<String>(1usize)?,
                    r.get::<String>(2usize)?,
                ))
            },
        )
        .await?;
    let Some((threshold, on_fail, state)) = row else {
        return Ok(false);
    };
    if threshold <= 0 || state != BatchStatus::Running.as_str() {
        return Ok(false);
    }
    let failures: i64 = conn
        .fetch_value(
            "SELECT COUNT(*) FROM jobs WHERE batch_id = $1 AND status IN ($2, $3)",
            &[
                batch_id.into(),
                JobStatus::Failed.as_str().into(),
                JobStatus::TimedOut.as_str().into(),
            ],
        )
        .await?
        .unwrap_or(0);
    if !remora_domain::batch::threshold_reached(failures as u64, threshold as u64) {
        return Ok(false);
    }
    let abort = OnFail::parse(&on_fail) == Some(OnFail::Abort);
    stop_in(conn, batch_id, BatchStatus::Stopped, abort).await?;
    Ok(true)
}

impl Store {
    /// Insert a batch row and its jobs in one transaction.
    pub async fn insert_batch(&self, b: &BatchRow, jobs: &[Job]) -> Result<()> {
        self.submit_jobs(Some(b), jobs, None).await
    }

    /// The batch row, if the batch was submitted with one (batches from
    /// before migration 0009 have none).
    pub async fn get_batch(&self, id: &str) -> Result<Option<BatchRow>> {
        let row = sqlx::query(&format!("SELECT {BATCH_COLS} FROM batches WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(batch_from_row).transpose()
    }

    /// Host counts of a batch by status.
    pub async fn batch_counts(&self, id: &str) -> Result<Counts> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) FROM jobs WHERE batch_id = $1 GROUP BY status")
                .bind(id)
                .fetch_all(&self.read)
                .await?;
        let mut c = Counts::default();
        for r in rows {
            let s: String = r.try_get(0)?;
            let n: i64 = r.try_get(1)?;
            let n = n as u64;
            match s.parse::<JobStatus>() {
                Ok(JobStatus::Queued) => c.queued = n,
                Ok(JobStatus::Running) => c.running = n,
                Ok(JobStatus::Completed) => c.completed = n,
                Ok(JobStatus::Failed) => c.failed = n,
                Ok(JobStatus::Canceled) => c.canceled = n,
                Ok(JobStatus::TimedOut) => c.timed_out = n,
                Err(_) => {}
            }
        }
        Ok(c)
    }

    /// Cancel a running batch: its queued hosts end `canceled` (`batch_stopped`)
    /// and its running ones are asked to stop. False if it was not running.
    pub async fn cancel_batch(&self, id: &str) -> Result<bool> {
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let state: Option<String> =
            sqlx::query(&format!("SELECT state FROM batches WHERE id = $1{lock}"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
        if state.as_deref() != Some(BatchStatus::Running.as_str()) {
            return Ok(false);
        }
        stop_in(&mut Conn::Any(&mut tx), id, BatchStatus::Canceled, true).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// The policy row of a new batch, inside the caller's transaction.
pub(crate) async fn insert_batch_in(conn: &mut Conn<'_>, b: &BatchRow) -> Result<()> {
    conn.execute(
        &format!("INSERT INTO batches ({BATCH_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
        &[
            (&b.id).into(),
            b.total.into(),
            b.max_parallel.into(),
            b.fail_threshold.into(),
            b.on_fail.as_str().into(),
            b.state.as_str().into(),
            (&b.source_batch_id).into(),
            b.created_at.into(),
            b.stopped_at.into(),
        ],
    )
    .await?;
    Ok(())
}
