//! Jobs: the row mapping, inserts, reads and the lifecycle (claim, requeue, finish, cancel).

mod list;

pub(crate) use list::like_pattern;
pub use list::{JobFilter, Page};

use crate::output::PendingOutput;
use crate::writer::{NewAudit, OpError, Value, Work};
use crate::{map_unique, Backend, BatchRow, Result, Store, StoreError};
use remora_domain::{Job, JobKind, JobOptions, JobSpec, JobSpecFields, JobStatus};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The job is now `running` on this worker.
    Claimed(Box<Job>),
    /// The server is at its `max_concurrency`: put the message back.
    Busy,
    /// The job is not `queued` any more (canceled, already finished, gone).
    NotQueued,
}

#[derive(Debug, Clone, Default)]
pub struct Finish {
    pub status: Option<JobStatus>,
    pub exit_code: Option<i64>,
    pub exit_signal: Option<String>,
    pub error: Option<String>,
    pub error_code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// It was queued and is now canceled.
    CanceledQueued,
    /// It is running; the worker was asked to stop it.
    Requested,
    /// Already in a final state.
    AlreadyFinal(JobStatus),
    NotFound,
}

/// The connection generation (migration 0019) as a column of a claim's `RETURNING`.
const CONN_GEN: &str = "(SELECT n FROM conn_generation WHERE id = 1) AS conn_gen";

pub(crate) const JOB_COLS: &str = "id, kind, command, args, script, shell, server_id, batch_id, status, priority, timeout_secs, exit_code, exit_signal, error, error_code, attempt, max_retries, worker_id, cancel_requested, created_at, started_at, finished_at, stdout_bytes, stderr_bytes, truncated, pty, become, become_user, env, template_id, template_version, schedule_id";

pub(crate) fn job_from_row(r: &AnyRow) -> Result<Job> {
    let kind: String = r.try_get("kind")?;
    let status: String = r.try_get("status")?;
    let args: String = r.try_get("args")?;
    let spec = JobSpecFields {
        kind: JobKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("job kind {kind}")))?,
        command: r.try_get("command")?,
        args: serde_json::from_str(&args).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        script: r.try_get("script")?,
        shell: r.try_get("shell")?,
    };
    Ok(Job {
        id: r.try_get("id")?,
        spec: JobSpec::try_from(spec).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        server_id: r.try_get("server_id")?,
        batch_id: r.try_get("batch_id")?,
        status: JobStatus::from_str(&status).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        priority: r.try_get("priority")?,
        timeout: r.try_get("timeout_secs")?,
        exit_code: r.try_get("exit_code")?,
        exit_signal: r.try_get("exit_signal")?,
        error: r.try_get("error")?,
        error_code: r.try_get("error_code")?,
        attempt: r.try_get("attempt")?,
        max_retries: r.try_get("max_retries")?,
        worker_id: r.try_get("worker_id")?,
        cancel_requested: r.try_get::<i64, _>("cancel_requested")? != 0,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        stdout_bytes: r.try_get("stdout_bytes")?,
        stderr_bytes: r.try_get("stderr_bytes")?,
        truncated: r.try_get::<i64, _>("truncated")? != 0,
        options: JobOptions {
            pty: r.try_get::<i64, _>("pty")? != 0,
            sudo: r.try_get::<i64, _>("become")? != 0,
            become_user: r.try_get("become_user")?,
            env: serde_json::from_str(&r.try_get::<String, _>("env")?)
                .map_err(|e| StoreError::Corrupt(format!("job env: {e}")))?,
        },
        template_id: r.try_get("template_id")?,
        template_version: r.try_get("template_version")?,
        schedule_id: r.try_get("schedule_id")?,
    })
}

pub(crate) fn insert_job_query(
    j: &Job,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments<'static>> {
    let spec = JobSpecFields::from(j.spec.clone());
    sqlx::query(
        "INSERT INTO jobs (id, kind, command, args, script, shell, server_id, batch_id, status, priority, timeout_secs, attempt, max_retries, cancel_requested, created_at, stdout_bytes, stderr_bytes, truncated, pty, become, become_user, env)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, 0, $13, 0, 0, 0, $14, $15, $16, $17)",
    )
    .bind(j.id.clone())
    .bind(spec.kind.as_str())
    .bind(spec.command)
    .bind(serde_json::to_string(&spec.args).unwrap_or_else(|_| "[]".into()))
    .bind(spec.script)
    .bind(spec.shell)
    .bind(j.server_id.clone())
    .bind(j.batch_id.clone())
    .bind(j.status.as_str())
    .bind(j.priority)
    .bind(j.timeout)
    .bind(j.max_retries)
    .bind(j.created_at)
    .bind(i64::from(j.options.pty))
    .bind(i64::from(j.options.sudo))
    .bind(j.options.become_user.clone())
    .bind(serde_json::to_string(&j.options.env).unwrap_or_else(|_| "{}".into()))
}

impl Store {
    pub async fn insert_job(&self, j: &Job) -> Result<()> {
        self.submit_jobs(None, std::slice::from_ref(j), None).await
    }

    /// Insert several jobs (a batch) in one transaction: one commit instead
    /// of one per job, and all or none.
    pub async fn insert_jobs(&self, jobs: &[Job]) -> Result<()> {
        self.submit_jobs(None, jobs, None).await
    }

    pub async fn get_job(&self, id: &str) -> Result<Option<Job>> {
        let row = sqlx::query(&format!("SELECT {JOB_COLS} FROM jobs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Move a queued job to `running` for `worker_id`, unless its server is at
    /// `max_concurrency` (counted over all workers). On SQLite through the
    /// group-commit writer; on PostgreSQL in its own transaction (see `writer`).
    pub async fn claim_job(&self, job_id: &str, worker_id: &str) -> Result<Claim> {
        Ok(self.claim_job_gen(job_id, worker_id).await?.0)
    }

    /// [`Store::claim_job`], with the connection generation read in the claim's transaction
    /// (`Some` with a claimed job): the counter that every change to a server's address, user,
    /// credential, jump host or pin, to a credential or to a trusted CA moves on (migration
    /// 0019). A cache of what was read for a server at generation `g` is current while claims
    /// still return `g`.
    pub async fn claim_job_gen(
        &self,
        job_id: &str,
        worker_id: &str,
    ) -> Result<(Claim, Option<i64>)> {
        if self.backend == Backend::Sqlite {
            return match self
                .writer
                .submit(Work::Claim {
                    job_id: job_id.to_string(),
                    worker_id: worker_id.to_string(),
                })
                .await?
            {
                Value::Claim(c, g) => Ok((c, g)),
                other => Err(StoreError::Corrupt(format!("writer answered {other:?}"))),
            };
        }
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        let claim = claim_in(&mut tx, self.backend, job_id, worker_id)
            .await
            .map_err(OpError::into_store)?;
        tx.commit().await?;
        Ok(claim)
    }

    /// The connection generation now (see [`Store::claim_job_gen`]).
    pub async fn conn_generation(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT n FROM conn_generation WHERE id = 1")
            .fetch_one(&self.read)
            .await?
            .try_get(0)?)
    }

    /// Put a running job back to `queued` (its command never started and a
    /// retry remains). Only the worker holding it may.
    pub async fn requeue_job(&self, job_id: &str, worker_id: &str, error: &str) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE jobs SET status = $4, worker_id = NULL, started_at = NULL, error = $1
             WHERE id = $2 AND status = $5 AND worker_id = $3",
        )
        .bind(error)
        .bind(job_id)
        .bind(worker_id)
        .bind(JobStatus::Queued.as_str())
        .bind(JobStatus::Running.as_str())
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Record the final state of a running job (through the group-commit
    /// writer). Exactly one final status wins: the update only applies while
    /// the job is still `running` on this worker. A pending cancel request
    /// turns the status into `canceled` unless the caller already decided `timed_out`.
    pub async fn finish_job(
        &self,
        job_id: &str,
        worker_id: &str,
        f: &Finish,
    ) -> Result<Option<JobStatus>> {
        self.finish_job_with_output(job_id, worker_id, f, None)
            .await
    }

    /// `finish_job` with the job's last output in the same transaction: its chunks are appended
    /// (as `append_output` would) and its byte counters set by the final status's own update. The
    /// output is stored even when the final status is refused (the job no longer running on
    /// this worker), as a flush of its own would have been. A retry after an unconfirmed commit
    /// sends the same chunks again, which are kept.
    pub async fn finish_job_with_output(
        &self,
        job_id: &str,
        worker_id: &str,
        f: &Finish,
        output: Option<PendingOutput>,
    ) -> Result<Option<JobStatus>> {
        match self
            .writer
            .submit(Work::Finish {
                job_id: job_id.to_string(),
                worker_id: worker_id.to_string(),
                finish: f.clone(),
                output,
            })
            .await?
        {
            Value::Final(s) => Ok(s),
            other => Err(StoreError::Corrupt(format!("writer answered {other:?}"))),
        }
    }

    /// Store a submission in one transaction (through the group-commit
    /// writer): the batch's policy row if it is a batch, its jobs, and the
    /// audit row. All or none.
    pub async fn submit_jobs(
        &self,
        batch: Option<&BatchRow>,
        jobs: &[Job],
        audit: Option<NewAudit>,
    ) -> Result<()> {
        self.writer
            .submit(Work::Submit {
                batch: batch.cloned(),
                jobs: jobs.to_vec(),
                audit,
            })
            .await?;
        Ok(())
    }

    /// End a job whatever worker holds it (the reaper, a cancel of a job
    /// whose worker is gone). Only applies to non-final jobs.
    pub async fn force_finish(
        &self,
        job_id: &str,
        status: JobStatus,
        error: &str,
        error_code: &str,
    ) -> Result<bool> {
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        let row = sqlx::query(
            "UPDATE jobs SET status = $1, error = $2, error_code = $3, finished_at = $4
             WHERE id = $5 AND status IN ($6, $7)
             RETURNING batch_id",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(error_code)
        .bind(remora_domain::time::now_ms())
        .bind(job_id)
        .bind(JobStatus::Queued.as_str())
        .bind(JobStatus::Running.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let batch_id: Option<String> = row.try_get(0)?;
        if let (Some(b), JobStatus::Failed | JobStatus::TimedOut) = (&batch_id, status) {
            crate::batches::after_final(&mut tx, self.backend, b).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn request_cancel(&self, job_id: &str) -> Result<CancelOutcome> {
        let now = remora_domain::time::now_ms();
        let r = sqlx::query(
            "UPDATE jobs SET status = $3, cancel_requested = 1, finished_at = $1, error = $4
             WHERE id = $2 AND status = $5",
        )
        .bind(now)
        .bind(job_id)
        .bind(JobStatus::Canceled.as_str())
        .bind("canceled before it started")
        .bind(JobStatus::Queued.as_str())
        .execute(&self.write)
        .await?;
        if r.rows_affected() == 1 {
            return Ok(CancelOutcome::CanceledQueued);
        }
        let r = sqlx::query("UPDATE jobs SET cancel_requested = 1 WHERE id = $1 AND status = $2")
            .bind(job_id)
            .bind(JobStatus::Running.as_str())
            .execute(&self.write)
            .await?;
        if r.rows_affected() == 1 {
            return Ok(CancelOutcome::Requested);
        }
        match self.get_job(job_id).await? {
            Some(j) if j.status.is_final() => Ok(CancelOutcome::AlreadyFinal(j.status)),
            Some(_) => Ok(CancelOutcome::Requested),
            None => Ok(CancelOutcome::NotFound),
        }
    }

    pub async fn is_cancel_requested(&self, job_id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT cancel_requested FROM jobs WHERE id = $1")
            .bind(job_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<i64, _>(0)? != 0,
            None => false,
        })
    }

    /// Jobs the database holds as `queued`, for re-pushing to the queue.
    pub async fn queued_jobs(&self, limit: i64) -> Result<Vec<(String, String, i64)>> {
        Ok(self
            .queued_jobs_after(None, limit)
            .await?
            .into_iter()
            .map(|q| (q.id, q.server_id, q.priority))
            .collect())
    }

    /// A page of `queued` jobs, oldest first, after `after` (the last job of the page before:
    /// keyset paging on `(created_at, id)`, the `jobs_status_created` index), at most `limit`.
    pub async fn queued_jobs_after(
        &self,
        after: Option<&QueuedRef>,
        limit: i64,
    ) -> Result<Vec<QueuedRef>> {
        let limit = limit.max(1);
        let first = format!(
            "SELECT id, server_id, priority, created_at FROM jobs WHERE status = $1 \
             ORDER BY created_at, id LIMIT {limit}"
        );
        let next = format!(
            "SELECT id, server_id, priority, created_at FROM jobs WHERE status = $1 \
             AND (created_at > $2 OR (created_at = $2 AND id > $3)) \
             ORDER BY created_at, id LIMIT {limit}"
        );
        let q = match after {
            None => sqlx::query(&first).bind(JobStatus::Queued.as_str()),
            Some(a) => sqlx::query(&next)
                .bind(JobStatus::Queued.as_str())
                .bind(a.created_at)
                .bind(a.id.clone()),
        };
        let rows = q.fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| {
                Ok(QueuedRef {
                    id: r.try_get(0)?,
                    server_id: r.try_get(1)?,
                    priority: r.try_get(2)?,
                    created_at: r.try_get(3)?,
                })
            })
            .collect()
    }
}

/// A `queued` job as the reconciler pushes it, with its place in the paging order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRef {
    pub id: String,
    pub server_id: String,
    pub priority: i64,
    pub created_at: i64,
}

/// `Store::claim_job` inside the caller's transaction. Writes only when it
/// claims; every other answer is a refusal that wrote nothing.
pub(crate) async fn claim_in(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    job_id: &str,
    worker_id: &str,
) -> Result<(Claim, Option<i64>), OpError> {
    if backend == Backend::Sqlite {
        return claim_in_sqlite(conn, job_id, worker_id).await;
    }
    let job_row = sqlx::query("SELECT server_id, status, batch_id FROM jobs WHERE id = $1")
        .bind(job_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(job_row) = job_row else {
        return Ok((Claim::NotQueued, None));
    };
    let server_id: String = job_row.try_get(0)?;
    let status: String = job_row.try_get(1)?;
    let batch_id: Option<String> = job_row.try_get(2)?;
    if status != JobStatus::Queued.as_str() {
        return Ok((Claim::NotQueued, None));
    }
    // Serialise claims per server so the running count cannot race.
    let max: Option<i64> =
        sqlx::query("SELECT max_concurrency FROM servers WHERE id = $1 FOR UPDATE")
            .bind(&server_id)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
    if let Some(max) = max {
        let running: i64 =
            sqlx::query("SELECT COUNT(*) FROM jobs WHERE server_id = $1 AND status = $2")
                .bind(&server_id)
                .bind(JobStatus::Running.as_str())
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
        if max > 0 && running >= max {
            return Ok((Claim::Busy, None));
        }
    }
    // The batch's max_parallel, counted under its row lock so claims of
    // the batch's jobs on different servers and workers serialise.
    if let Some(batch_id) = &batch_id {
        let max: Option<i64> =
            sqlx::query("SELECT max_parallel FROM batches WHERE id = $1 FOR UPDATE")
                .bind(batch_id)
                .fetch_optional(&mut *conn)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
        if let Some(max) = max.filter(|m| *m > 0) {
            let running: i64 =
                sqlx::query("SELECT COUNT(*) FROM jobs WHERE batch_id = $1 AND status = $2")
                    .bind(batch_id)
                    .bind(JobStatus::Running.as_str())
                    .fetch_one(&mut *conn)
                    .await?
                    .try_get(0)?;
            if running >= max {
                return Ok((Claim::Busy, None));
            }
        }
    }
    let now = remora_domain::time::now_ms();
    let row = sqlx::query(&format!(
        "UPDATE jobs SET status = $4, worker_id = $1, started_at = $2, attempt = attempt + 1
         WHERE id = $3 AND status = $5
         RETURNING {JOB_COLS}, {CONN_GEN}"
    ))
    .bind(worker_id)
    .bind(now)
    .bind(job_id)
    .bind(JobStatus::Running.as_str())
    .bind(JobStatus::Queued.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => Ok((
            Claim::Claimed(Box::new(job_from_row(&row)?)),
            Some(row.try_get("conn_gen")?),
        )),
        None => Ok((Claim::NotQueued, None)),
    }
}

/// `claim_in` on SQLite: one statement. Every write goes through the single
/// write connection (and its group-commit writer), so the running count
/// cannot race, and each statement there is a round trip to SQLite's thread:
/// the seven statements of the PostgreSQL claim made it the largest part of
/// a short job's time on the writer.
async fn claim_in_sqlite(
    conn: &mut sqlx::AnyConnection,
    job_id: &str,
    worker_id: &str,
) -> Result<(Claim, Option<i64>), OpError> {
    let now = remora_domain::time::now_ms();
    let row = sqlx::query(&format!(
        "UPDATE jobs SET status = $4, worker_id = $1, started_at = $2, attempt = attempt + 1
         WHERE id = $3 AND status = $5
           AND (COALESCE((SELECT max_concurrency FROM servers WHERE id = jobs.server_id), 0) <= 0
                OR (SELECT COUNT(*) FROM jobs r WHERE r.server_id = jobs.server_id AND r.status = $4)
                   < (SELECT max_concurrency FROM servers WHERE id = jobs.server_id))
           AND (jobs.batch_id IS NULL OR NOT EXISTS (
                SELECT 1 FROM batches b WHERE b.id = jobs.batch_id AND b.max_parallel > 0
                  AND (SELECT COUNT(*) FROM jobs r WHERE r.batch_id = b.id AND r.status = $4)
                      >= b.max_parallel))
         RETURNING {JOB_COLS}, {CONN_GEN}"
    ))
    .bind(worker_id)
    .bind(now)
    .bind(job_id)
    .bind(JobStatus::Running.as_str())
    .bind(JobStatus::Queued.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = row {
        return Ok((
            Claim::Claimed(Box::new(job_from_row(&row)?)),
            Some(row.try_get("conn_gen")?),
        ));
    }
    // Not claimed: queued still means its server (or its batch) is full.
    let status: Option<String> = sqlx::query("SELECT status FROM jobs WHERE id = $1")
        .bind(job_id)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    Ok((
        match status {
            Some(s) if s == JobStatus::Queued.as_str() => Claim::Busy,
            _ => Claim::NotQueued,
        },
        None,
    ))
}

/// `Store::finish_job` inside the caller's transaction; `None` (nothing
/// written) when the job is not running on `worker_id`.
pub(crate) async fn finish_in(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    job_id: &str,
    worker_id: &str,
    f: &Finish,
    output: Option<&PendingOutput>,
) -> Result<Option<JobStatus>, OpError> {
    if let Some(o) = output.filter(|o| !o.chunks.is_empty()) {
        crate::output::insert_chunks_in(&mut *conn, job_id, &o.chunks).await?;
    }
    let status = f.status.unwrap_or(JobStatus::Failed);
    // What a pending cancel request makes of it: a run that ended by
    // itself (or failed) was canceled; a timeout stays a timeout.
    let if_canceled = match status {
        JobStatus::Completed | JobStatus::Failed => JobStatus::Canceled,
        other => other,
    };
    let now = remora_domain::time::now_ms();
    // Without output the counters keep their values (NULL binds leave them as they are).
    let row = sqlx::query(
        "UPDATE jobs SET status = CASE WHEN cancel_requested = 1 THEN $9 ELSE $1 END,
             exit_code = $2, exit_signal = $3, error = $4, error_code = $5, finished_at = $6,
             stdout_bytes = COALESCE($11, stdout_bytes), stderr_bytes = COALESCE($12, stderr_bytes),
             truncated = COALESCE($13, truncated)
         WHERE id = $7 AND status = $10 AND worker_id = $8
         RETURNING status, batch_id",
    )
    .bind(status.as_str())
    .bind(f.exit_code)
    .bind(f.exit_signal.clone())
    .bind(f.error.clone())
    .bind(f.error_code.clone())
    .bind(now)
    .bind(job_id)
    .bind(worker_id)
    .bind(if_canceled.as_str())
    .bind(JobStatus::Running.as_str())
    .bind(output.map(|o| o.stdout_bytes))
    .bind(output.map(|o| o.stderr_bytes))
    .bind(output.map(|o| o.truncated as i64))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        if let Some(o) = output {
            crate::output::update_counters(
                &mut *conn,
                job_id,
                o.stdout_bytes,
                o.stderr_bytes,
                o.truncated,
            )
            .await?;
        }
        return Ok(None);
    };
    let final_status: String = row.try_get(0)?;
    let batch_id: Option<String> = row.try_get(1)?;
    let final_status = JobStatus::from_str(&final_status)
        .map_err(|_| StoreError::Corrupt(format!("job status `{final_status}`")))?;
    if let (Some(b), JobStatus::Failed | JobStatus::TimedOut) = (&batch_id, final_status) {
        crate::batches::after_final(&mut *conn, backend, b).await?;
    }
    Ok(Some(final_status))
}

/// `Store::submit_jobs` inside the caller's transaction.
pub(crate) async fn submit_in(
    conn: &mut sqlx::AnyConnection,
    batch: Option<&BatchRow>,
    jobs: &[Job],
    audit: Option<&NewAudit>,
) -> Result<(), OpError> {
    if let Some(b) = batch {
        crate::batches::insert_batch_in(&mut *conn, b).await?;
    }
    for j in jobs {
        insert_job_query(j)
            .execute(&mut *conn)
            .await
            .map_err(map_unique)?;
    }
    if let Some(a) = audit {
        crate::audit::insert_in(&mut *conn, a).await?;
    }
    Ok(())
}
