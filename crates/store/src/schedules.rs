//! Schedules, the claim of a due time (exactly once across API instances) and the run history.

use crate::{map_unique, Result, Store, StoreError};
use remora_domain::schedule::Overlap;
use remora_domain::JobStatus;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A schedule as stored (its sealed parameter values are never serialised).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ScheduleRow {
    pub id: String,
    pub name: String,
    pub template_id: String,
    #[serde(skip)]
    pub params_enc: Option<Vec<u8>>,
    pub cron: String,
    pub timezone: String,
    pub enabled: bool,
    pub overlap: Overlap,
    pub catch_up: bool,
    pub jitter_secs: i64,
    /// The next cron time (epoch ms, UTC), without jitter.
    #[serde(with = "remora_domain::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_due_at: Option<i64>,
    /// When it will actually start: `next_due_at` plus its jitter.
    #[serde(with = "remora_domain::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_run_at: Option<i64>,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// What happened to one due time of a schedule.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ScheduleRun {
    pub schedule_id: String,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub due_at: i64,
    /// `firing` (claimed, jobs being created), `started`, `pending` (overlap `queue`:
    /// waits for the previous run), `skipped` (overlap `skip`), `missed` (downtime, no
    /// catch-up) or `failed` (the jobs could not be created; `reason` says why).
    pub status: String,
    pub job_ids: Vec<String>,
    pub batch_id: Option<String>,
    pub reason: Option<String>,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

const SCHEDULE_COLS: &str = "id, name, template_id, params_enc, cron, timezone, enabled, overlap, catch_up, jitter_secs, next_due_at, next_run_at, created_at, updated_at";

fn schedule_from_row(r: &AnyRow) -> Result<ScheduleRow> {
    let overlap: String = r.try_get(7)?;
    Ok(ScheduleRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        template_id: r.try_get(2)?,
        params_enc: r.try_get(3)?,
        cron: r.try_get(4)?,
        timezone: r.try_get(5)?,
        enabled: r.try_get::<i64, _>(6)? != 0,
        overlap: Overlap::parse(&overlap)
            .ok_or_else(|| StoreError::Corrupt(format!("overlap {overlap}")))?,
        catch_up: r.try_get::<i64, _>(8)? != 0,
        jitter_secs: r.try_get(9)?,
        next_due_at: r.try_get(10)?,
        next_run_at: r.try_get(11)?,
        created_at: r.try_get(12)?,
        updated_at: r.try_get(13)?,
    })
}

fn run_from_row(r: &AnyRow) -> Result<ScheduleRun> {
    let ids: String = r.try_get(3)?;
    Ok(ScheduleRun {
        schedule_id: r.try_get(0)?,
        due_at: r.try_get(1)?,
        status: r.try_get(2)?,
        job_ids: serde_json::from_str(&ids).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        batch_id: r.try_get(4)?,
        reason: r.try_get(5)?,
        created_at: r.try_get(6)?,
    })
}

/// Where a job came from and its sealed parameter values (`Vault::seal` of the JSON list of
/// `remora_domain::template::ParamValue`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobOrigin {
    pub template_id: String,
    pub template_version: i64,
    pub schedule_id: Option<String>,
    pub params_enc: Option<Vec<u8>>,
}

/// How a claimed due time is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Firing,
    Started,
    Pending,
    Skipped,
    Missed,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Firing => "firing",
            RunStatus::Started => "started",
            RunStatus::Pending => "pending",
            RunStatus::Skipped => "skipped",
            RunStatus::Missed => "missed",
            RunStatus::Failed => "failed",
        }
    }
}

impl Store {
    /// Insert a schedule (`row.id`, `created_at`, `updated_at` are taken as given).
    pub async fn insert_schedule(&self, s: &ScheduleRow) -> Result<()> {
        sqlx::query(&format!("INSERT INTO schedules ({SCHEDULE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"))
            .bind(s.id.clone())
            .bind(s.name.clone())
            .bind(s.template_id.clone())
            .bind(s.params_enc.clone())
            .bind(s.cron.clone())
            .bind(s.timezone.clone())
            .bind(s.enabled as i64)
            .bind(s.overlap.as_str())
            .bind(s.catch_up as i64)
            .bind(s.jitter_secs)
            .bind(s.next_due_at)
            .bind(s.next_run_at)
            .bind(s.created_at)
            .bind(s.updated_at)
            .execute(&self.write)
            .await
            .map_err(map_unique)?;
        Ok(())
    }

    /// Replace a schedule's settable fields (all but id and created_at). False when gone.
    pub async fn update_schedule(&self, s: &ScheduleRow) -> Result<bool> {
        let r = sqlx::query("UPDATE schedules SET name = $2, template_id = $3, params_enc = $4, cron = $5, timezone = $6, enabled = $7, overlap = $8, catch_up = $9, jitter_secs = $10, next_due_at = $11, next_run_at = $12, updated_at = $13 WHERE id = $1")
            .bind(s.id.clone())
            .bind(s.name.clone())
            .bind(s.template_id.clone())
            .bind(s.params_enc.clone())
            .bind(s.cron.clone())
            .bind(s.timezone.clone())
            .bind(s.enabled as i64)
            .bind(s.overlap.as_str())
            .bind(s.catch_up as i64)
            .bind(s.jitter_secs)
            .bind(s.next_due_at)
            .bind(s.next_run_at)
            .bind(remora_domain::time::now_ms())
            .execute(&self.write)
            .await
            .map_err(map_unique)?;
        Ok(r.rows_affected() == 1)
    }

    /// A schedule by id or name.
    pub async fn get_schedule(&self, id_or_name: &str) -> Result<Option<ScheduleRow>> {
        let row = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLS} FROM schedules WHERE id = $1 OR name = $1"
        ))
        .bind(id_or_name)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(schedule_from_row).transpose()
    }

    pub async fn list_schedules(&self) -> Result<Vec<ScheduleRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLS} FROM schedules ORDER BY name"
        ))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(schedule_from_row).collect()
    }

    /// Delete a schedule and its run history.
    pub async fn delete_schedule(&self, id: &str) -> Result<bool> {
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        let r = sqlx::query("DELETE FROM schedules WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM schedule_runs WHERE schedule_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Enabled schedules whose run time is at or before `now_ms`, soonest first.
    pub async fn due_schedules(&self, now_ms: i64, limit: i64) -> Result<Vec<ScheduleRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLS} FROM schedules WHERE enabled = 1 AND next_run_at IS NOT NULL AND next_run_at <= $1 ORDER BY next_run_at LIMIT $2"
        ))
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(schedule_from_row).collect()
    }

    /// Claim the due time `old_due` of schedule `id`: move the schedule on to
    /// (`new_due`, `new_run`) and record `record_due` as `status`, in one transaction. Only
    /// one caller wins a due time, whatever the number of API instances: the UPDATE matches
    /// only while `next_due_at` is still `old_due`, and the run row is unique per
    /// (schedule_id, due_at). False when another instance (or a pause/edit) got there first.
    pub async fn claim_schedule_due(
        &self,
        id: &str,
        old_due: i64,
        new_due: Option<i64>,
        new_run: Option<i64>,
        record_due: i64,
        status: RunStatus,
        reason: Option<&str>,
    ) -> Result<bool> {
        let now = remora_domain::time::now_ms();
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        let r = sqlx::query("UPDATE schedules SET next_due_at = $1, next_run_at = $2, updated_at = $3 WHERE id = $4 AND next_due_at = $5 AND enabled = 1")
            .bind(new_due)
            .bind(new_run)
            .bind(now)
            .bind(id)
            .bind(old_due)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        let ins = sqlx::query("INSERT INTO schedule_runs (schedule_id, due_at, status, job_ids, reason, created_at, updated_at) VALUES ($1, $2, $3, '[]', $4, $5, $5)")
            .bind(id)
            .bind(record_due)
            .bind(status.as_str())
            .bind(reason.map(str::to_string))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_unique);
        match ins {
            Ok(_) => {}
            Err(StoreError::Conflict { .. }) => return Ok(false),
            Err(e) => return Err(e),
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Move a recorded run from one status to another (e.g. `pending` → `firing`); false when
    /// it is not in `from` any more (another instance took it).
    pub async fn move_schedule_run(
        &self,
        schedule_id: &str,
        due_at: i64,
        from: RunStatus,
        to: RunStatus,
    ) -> Result<bool> {
        let r = sqlx::query("UPDATE schedule_runs SET status = $1, updated_at = $2 WHERE schedule_id = $3 AND due_at = $4 AND status = $5")
            .bind(to.as_str())
            .bind(remora_domain::time::now_ms())
            .bind(schedule_id)
            .bind(due_at)
            .bind(from.as_str())
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Finish a `firing` run: `started` with its jobs, or `failed` with a reason.
    pub async fn finish_schedule_run(
        &self,
        schedule_id: &str,
        due_at: i64,
        status: RunStatus,
        job_ids: &[String],
        batch_id: Option<&str>,
        reason: Option<&str>,
    ) -> Result<()> {
        sqlx::query("UPDATE schedule_runs SET status = $1, job_ids = $2, batch_id = $3, reason = $4, updated_at = $5 WHERE schedule_id = $6 AND due_at = $7")
            .bind(status.as_str())
            .bind(serde_json::to_string(job_ids).unwrap_or_else(|_| "[]".into()))
            .bind(batch_id.map(str::to_string))
            .bind(reason.map(str::to_string))
            .bind(remora_domain::time::now_ms())
            .bind(schedule_id)
            .bind(due_at)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Runs waiting for their schedule's previous run (overlap `queue`), oldest first.
    pub async fn pending_schedule_runs(&self, limit: i64) -> Result<Vec<ScheduleRun>> {
        let rows = sqlx::query("SELECT schedule_id, due_at, status, job_ids, batch_id, reason, created_at FROM schedule_runs WHERE status = $1 ORDER BY due_at LIMIT $2")
            .bind(RunStatus::Pending.as_str())
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// A schedule's runs, newest first.
    pub async fn list_schedule_runs(
        &self,
        schedule_id: &str,
        limit: i64,
    ) -> Result<Vec<ScheduleRun>> {
        let rows = sqlx::query("SELECT schedule_id, due_at, status, job_ids, batch_id, reason, created_at FROM schedule_runs WHERE schedule_id = $1 ORDER BY due_at DESC LIMIT $2")
            .bind(schedule_id)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// Whether a run of this schedule is still going: a job of it queued or running, or a
    /// run being fired right now.
    pub async fn schedule_busy(&self, schedule_id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT (SELECT COUNT(*) FROM jobs WHERE schedule_id = $1 AND status IN ($2, $3)) + (SELECT COUNT(*) FROM schedule_runs WHERE schedule_id = $1 AND status = $4)")
            .bind(schedule_id)
            .bind(JobStatus::Queued.as_str())
            .bind(JobStatus::Running.as_str())
            .bind(RunStatus::Firing.as_str())
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get::<i64, _>(0)? > 0)
    }

    /// Insert a template's jobs (one transaction, as `insert_jobs`) with where they came
    /// from (template, version, schedule) and their sealed parameter values, which the worker
    /// opens: a worker never sees such a job without its parameters.
    pub async fn insert_template_jobs(
        &self,
        jobs: &[remora_domain::Job],
        origin: &JobOrigin,
    ) -> Result<()> {
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        for j in jobs {
            crate::jobs::insert_job(&mut crate::sql::Conn::Any(&mut tx), j).await?;
            sqlx::query("UPDATE jobs SET template_id = $1, template_version = $2, schedule_id = $3, params_enc = $4 WHERE id = $5")
                .bind(origin.template_id.clone())
                .bind(origin.template_version)
                .bind(origin.schedule_id.clone())
                .bind(origin.params_enc.clone())
                .bind(j.id.clone())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A job's template, version and sealed parameter values, if it came from a template.
    pub async fn job_origin(&self, job_id: &str) -> Result<Option<JobOrigin>> {
        let row = sqlx::query("SELECT template_id, template_version, schedule_id, params_enc FROM jobs WHERE id = $1 AND template_id IS NOT NULL")
            .bind(job_id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| {
            Ok(JobOrigin {
                template_id: r.try_get(0)?,
                template_version: r.try_get(1)?,
                schedule_id: r.try_get(2)?,
                params_enc: r.try_get(3)?,
            })
        })
        .transpose()
    }
}
