//! Jobs: the row mapping, inserts, reads and the lifecycle (claim, requeue, finish, cancel).

mod list;

pub(crate) use list::like_pattern;
pub use list::{JobFilter, Page};

use crate::output::PendingOutput;
use crate::sql::{Arg, Conn, Row};
use crate::writer::{NewAudit, OpError, Value, Work};
use crate::{Backend, BatchRow, Result, Store, StoreError};
use remora_domain::{Job, JobKind, JobOptions, JobSpec, JobSpecFields, JobStatus};
use sqlx::any::AnyRow;
use sqlx::Row as _;

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
    job_from(&Row::Any(r))
}

/// A job from a row of `JOB_COLS`, on either connection.
pub(crate) fn job_from(r: &Row<'_, '_>) -> Result<Job> {
    let kind: String = r.get("kind")?;
    let status: String = r.get("status")?;
    let args: String = r.get("args")?;
    let spec = JobSpecFields {
        kind: JobKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("job kind {kind}")))?,
        command: r.get("command")?,
        args: serde_json::from_str(&args).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        script: r.get("script")?,
        shell: r.get("shell")?,
    };
    Ok(Job {
        id: r.get("id")?,
        spec: JobSpec::try_from(spec).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        server_id: r.get("server_id")?,
        batch_id: r.get("batch_id")?,
        status: JobStatus::from_str(&status).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        priority: r.get("priority")?,
        timeout: r.get("timeout_secs")?,
        exit_code: r.get("exit_code")?,
        exit_signal: r.get("exit_signal")?,
        error: r.get("error")?,
        error_code: r.get("error_code")?,
        attempt: r.get("attempt")?,
        max_retries: r.get("max_retries")?,
        worker_id: r.get("worker_id")?,
        cancel_requested: r.get::<i64>("cancel_requested")? != 0,
        created_at: r.get("created_at")?,
        started_at: r.get("started_at")?,
        finished_at: r.get("finished_at")?,
        stdout_bytes: r.get("stdout_bytes")?,
        stderr_bytes: r.get("stderr_bytes")?,
        truncated: r.get::<i64>("truncated")? != 0,
        options: JobOptions {
            pty: r.get::<i64>("pty")? != 0,
            sudo: r.get::<i64>("become")? != 0,
            become_user: r.get("become_user")?,
            env: serde_json::from_str(&r.get::<String>("env")?)
                .map_err(|e| StoreError::Corrupt(format!("job env: {e}")))?,
        },
        template_id: r.get("template_id")?,
        template_version: r.get("template_version")?,
        schedule_id: r.get("schedule_id")?,
    })
}

/// Insert a new job's row, inside the caller's transaction.
pub(crate) async fn insert_job(conn: &mut Conn<'_>, j: &Job) -> Result<()> {
    let spec = JobSpecFields::from(j.spec.clone());
    let args = serde_json::to_string(&spec.args).unwrap_or_else(|_| "[]".into());
    let env = serde_json::to_string(&j.options.env).unwrap_or_else(|_| "{}".into());
    conn.execute(
        "INSERT INTO jobs (id, kind, command, args, script, shell, server_id, batch_id, status, priority, timeout_secs, attempt, max_retries, cancel_requested, created_at, stdout_bytes, stderr_bytes, truncated, pty, become, become_user, env)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, 0, $13, 0, 0, 0, $14, $15, $16, $17)",
        &[
            (&j.id).into(),
            spec.kind.as_str().into(),
            (&spec.command).into(),
            (&args).into(),
            (&spec.script).into(),
            (&spec.shell).into(),
            (&j.server_id).into(),
            (&j.batch_id).into(),
            j.status.as_str().into(),
            j.priority.into(),
            j.timeout.into(),
            j.max_retries.into(),
            j.created_at.into(),
            i64::from(j.options.pty).into(),
            i64::from(j.options.sudo).into(),
            (&j.options.become_user).into(),
            (&env).into(),
        ],
    )
    .await?;
    Ok(())
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
        let claim = claim_in(&mut Conn::Any(&mut tx), self.backend, job_id, worker_id)
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
                resolve: None,
            })
            .await?;
        Ok(())
    }

    /// Store one job for the server `server` names (its id, else its name), resolved in the
    /// job's own transaction, with the audit row: the server's id, or `None` (nothing stored)
    /// when there is no such server. `job.server_id` is replaced by the resolved id.
    pub async fn submit_job_to(
        &self,
        server: &str,
        job: &Job,
        audit: Option<NewAudit>,
    ) -> Result<Option<String>> {
        match self
            .writer
            .submit(Work::Submit {
                batch: None,
                jobs: vec![job.clone()],
                audit,
                resolve: Some(server.to_string()),
            })
            .await?
        {
            Value::Server(s) => Ok(s),
            other => Err(StoreError::Corrupt(format!("writer answered {other:?}"))),
        }
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
            crate::batches::after_final(&mut Conn::Any(&mut tx), self.backend, b).await?;
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
    conn: &mut Conn<'_>,
    backend: Backend,
    job_id: &str,
    worker_id: &str,
) -> Result<(Claim, Option<i64>), OpError> {
    if backend == Backend::Sqlite {
        return claim_in_sqlite(conn, job_id, worker_id).await;
    }
    let job_row = conn
        .fetch_optional(
            "SELECT server_id, status, batch_id FROM jobs WHERE id = $1",
            &[job_id.into()],
            |r| {
                Ok((
                    r.get::<String>(0usize)?,
                    r.get::<String>(1usize)?,
                    r.get::<Option<String>>(2usize)?,
                ))
            },
        )
        .await?;
    let Some((server_id, status, batch_id)) = job_row else {
        return Ok((Claim::NotQueued, None));
    };
    if status != JobStatus::Queued.as_str() {
        return Ok((Claim::NotQueued, None));
    }
    // Serialise claims per server so the running count cannot race.
    let max: Option<i64> = conn
        .fetch_value(
            "SELECT max_concurrency FROM servers WHERE id = $1 FOR UPDATE",
            &[(&server_id).into()],
        )
        .await?;
    if let Some(max) = max {
        let running: i64 = conn
            .fetch_value(
                "SELECT COUNT(*) FROM jobs WHERE server_id = $1 AND status = $2",
                &[(&server_id).into(), JobStatus::Running.as_str().into()],
            )
            .await?
            .unwrap_or(0);
        if max > 0 && running >= max {
            return Ok((Claim::Busy, None));
        }
    }
    // The batch's max_parallel, counted under its row lock so claims of
    // the batch's jobs on different servers and workers serialise.
    if let Some(batch_id) = &batch_id {
        let max: Option<i64> = conn
            .fetch_value(
                "SELECT max_parallel FROM batches WHERE id = $1 FOR UPDATE",
                &[batch_id.into()],
            )
            .await?;
        if let Some(max) = max.filter(|m| *m > 0) {
            let running: i64 = conn
                .fetch_value(
                    "SELECT COUNT(*) FROM jobs WHERE batch_id = $1 AND status = $2",
                    &[batch_id.into(), JobStatus::Running.as_str().into()],
                )
                .await?
                .unwrap_or(0);
            if running >= max {
                return Ok((Claim::Busy, None));
            }
        }
    }
    let now = remora_domain::time::now_ms();
    let claimed = conn
        .fetch_optional(
            &format!(
                "UPDATE jobs SET status = $4, worker_id = $1, started_at = $2, attempt = attempt + 1
                 WHERE id = $3 AND status = $5
                 RETURNING {JOB_COLS}, {CONN_GEN}"
            ),
            &claim_args(worker_id, now, job_id),
            claimed_row,
        )
        .await?;
    Ok(match claimed {
        Some((job, g)) => (Claim::Claimed(Box::new(job)), Some(g)),
        None => (Claim::NotQueued, None),
    })
}

/// The binds of a claim's `UPDATE`: `$1` worker, `$2` now, `$3` job, `$4` running, `$5` queued.
fn claim_args<'a>(worker_id: &'a str, now: i64, job_id: &'a str) -> [Arg<'a>; 5] {
    [
        worker_id.into(),
        now.into(),
        job_id.into(),
        JobStatus::Running.as_str().into(),
        JobStatus::Queued.as_str().into(),
    ]
}

/// The job and connection generation of a claim's `RETURNING`.
fn claimed_row(r: &Row<'_, '_>) -> Result<(Job, i64)> {
    Ok((job_from(r)?, r.get("conn_gen")?))
}

/// `claim_in` on SQLite: one statement. Every write goes through the single
/// write connection (and its group-commit writer), so the running count
/// cannot race, and the seven statements of the PostgreSQL claim would make
/// it the largest part of a short job's time on the writer.
async fn claim_in_sqlite(
    conn: &mut Conn<'_>,
    job_id: &str,
    worker_id: &str,
) -> Result<(Claim, Option<i64>), OpError> {
    let now = remora_domain::time::now_ms();
    let claimed = conn
        .fetch_optional(
            &format!(
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
            ),
            &claim_args(worker_id, now, job_id),
            claimed_row,
        )
        .await?;
    if let Some((job, g)) = claimed {
        return Ok((Claim::Claimed(Box::new(job)), Some(g)));
    }
    // Not claimed: queued still means its server (or its batch) is full.
    let status: Option<String> = conn
        .fetch_value("SELECT status FROM jobs WHERE id = $1", &[job_id.into()])
        .await?;
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
    conn: &mut Conn<'_>,
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
    let row = conn
        .fetch_optional(
            "UPDATE jobs SET status = CASE WHEN cancel_requested = 1 THEN $9 ELSE $1 END,
                 exit_code = $2, exit_signal = $3, error = $4, error_code = $5, finished_at = $6,
                 stdout_bytes = COALESCE($11, stdout_bytes), stderr_bytes = COALESCE($12, stderr_bytes),
                 truncated = COALESCE($13, truncated)
             WHERE id = $7 AND status = $10 AND worker_id = $8
             RETURNING status, batch_id",
            &[
                status.as_str().into(),
                f.exit_code.into(),
                (&f.exit_signal).into(),
                (&f.error).into(),
                (&f.error_code).into(),
                now.into(),
                job_id.into(),
                worker_id.into(),
                if_canceled.as_str().into(),
                JobStatus::Running.as_str().into(),
                output.map(|o| o.stdout_bytes).into(),
                output.map(|o| o.stderr_bytes).into(),
                output.map(|o| o.truncated as i64).into(),
            ],
            |r| Ok((r.get::<String>(0usize)?, r.get::<Option<String>>(1usize)?)),
        )
        .await?;
    let Some((final_status, batch_id)) = row else {
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
    let final_status = JobStatus::from_str(&final_status)
        .map_err(|_| StoreError::Corrupt(format!("job status `{final_status}`")))?;
    if let (Some(b), JobStatus::Failed | JobStatus::TimedOut) = (&batch_id, final_status) {
        crate::batches::after_final(&mut *conn, backend, b).await?;
    }
    Ok(Some(final_status))
}

/// `Store::submit_jobs` inside the caller's transaction. With `resolve` (the one job's server
/// as the caller named it: an id, else a name), the job goes to that server's id, returned;
/// `None` and nothing written when there is no such server.
pub(crate) async fn submit_in(
    conn: &mut Conn<'_>,
    batch: Option<&BatchRow>,
    jobs: &[Job],
    audit: Option<&NewAudit>,
    resolve: Option<&str>,
) -> Result<Option<String>, OpError> {
    let server = match resolve {
        None => None,
        Some(r) => {
            let found = match conn
                .fetch_value::<String>("SELECT id FROM servers WHERE id = $1", &[r.into()])
                .await?
            {
                Some(id) => Some(id),
                None => {
                    conn.fetch_value::<String>(
                        "SELECT id FROM servers WHERE name = $1",
                        &[r.into()],
                    )
                    .await?
                }
            };
            match found {
                Some(id) => Some(id),
                None => return Ok(None),
            }
        }
    };
    if let Some(b) = batch {
        crate::batches::insert_batch_in(&mut *conn, b).await?;
    }
    for j in jobs {
        match &server {
            Some(id) if *id != j.server_id => {
                let j = Job {
                    server_id: id.clone(),
                    ..j.clone()
                };
                insert_job(&mut *conn, &j).await?
            }
            _ => insert_job(&mut *conn, j).await?,
        }
    }
    if let Some(a) = audit {
        crate::audit::insert_in(&mut *conn, a).await?;
    }
    Ok(server)
}

/// SQLite: move up to `limit` jobs of the search backlog (migration 0020) into the search index,
/// oldest ids first, inside the caller's transaction; how many it moved.
pub(crate) async fn index_search_in(conn: &mut Conn<'_>, limit: i64) -> Result<u64, OpError> {
    // The same `limit` oldest ids in each statement: the transaction holds the write lock, so
    // the backlog does not change between them.
    const TAKE: &str = "SELECT id FROM jobs_fts_backlog ORDER BY id LIMIT $1";
    let n = conn
        .execute(
            &format!("INSERT INTO jobs_fts_keys (id) {TAKE}"),
            &[limit.into()],
        )
        .await?;
    if n == 0 {
        return Ok(0);
    }
    conn.execute(
        &format!(
            "INSERT INTO jobs_fts (rowid, id, command, script)
             SELECT k.rid, j.id, j.command, j.script
             FROM ({TAKE}) b JOIN jobs j ON j.id = b.id JOIN jobs_fts_keys k ON k.id = b.id"
        ),
        &[limit.into()],
    )
    .await?;
    conn.execute(
        &format!("DELETE FROM jobs_fts_backlog WHERE id IN ({TAKE})"),
        &[limit.into()],
    )
    .await?;
    Ok(n)
}

/// Jobs moved into the search index per transaction (`Store::index_search_backlog`).
pub const SEARCH_INDEX_BATCH: i64 = 2_000;

impl Store {
    /// SQLite: move every job of the search backlog into the search index (migration 0020),
    /// [`SEARCH_INDEX_BATCH`] per transaction through the group-commit writer, so no round
    /// holds the writer long. Searches are exact whether or not this ran; it keeps them on the
    /// index. PostgreSQL indexes on insert: nothing to do. How many jobs it moved.
    pub async fn index_search_backlog(&self) -> Result<u64> {
        if self.backend != Backend::Sqlite {
            return Ok(0);
        }
        let mut total = 0;
        loop {
            let n = match self
                .writer
                .submit(Work::IndexSearch {
                    limit: SEARCH_INDEX_BATCH,
                })
                .await?
            {
                Value::Count(n) => n,
                other => return Err(StoreError::Corrupt(format!("writer answered {other:?}"))),
            };
            total += n;
            if n < SEARCH_INDEX_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// SQLite: jobs not yet in the search index (0 on PostgreSQL).
    pub async fn search_backlog(&self) -> Result<i64> {
        if self.backend != Backend::Sqlite {
            return Ok(0);
        }
        Ok(sqlx::query("SELECT COUNT(*) FROM jobs_fts_backlog")
            .fetch_one(&self.read)
            .await?
            .try_get(0)?)
    }
}
