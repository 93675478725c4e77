//! Notifications: targets (webhook or email) and their filters, the deliveries of events to them with every attempt, and the claims that make each event and each delivery happen once across API instances.
//!
//! # Where job events come from
//! A job's final status is written by several paths (the worker's finish,
//! the reaper, a cancel of a queued job), each a conditional `UPDATE` that
//! only one caller wins. Rather than hook each path, a finished job carries
//! `notified = 0` until a dispatcher claims it with
//! `UPDATE … SET notified = 1 WHERE notified = 0` ([`Store::dispatch_jobs`]):
//! the claim and the deliveries it creates commit together, so every final
//! status is turned into deliveries exactly once, by one API instance, even
//! across crashes and with several instances on one database. Other events
//! (worker down, schedule skipped) are reported with [`Store::notify_event`];
//! every delivery has a per-target `event_key`, unique, so an event reported
//! twice is delivered once.

use crate::{map_unique, Backend, Result, Store, StoreError};
use remora_domain::{Job, JobStatus};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Every event a target may subscribe to.
pub const EVENTS: [&str; 8] = [
    "job.completed",
    "job.failed",
    "job.timed_out",
    "job.canceled",
    "batch.finished",
    "schedule.skipped",
    "host_key.mismatch",
    "worker.down",
];

/// The event of a job's final status.
pub fn job_event(status: JobStatus) -> Option<&'static str> {
    match status {
        JobStatus::Completed => Some("job.completed"),
        JobStatus::Failed => Some("job.failed"),
        JobStatus::TimedOut => Some("job.timed_out"),
        JobStatus::Canceled => Some("job.canceled"),
        JobStatus::Queued | JobStatus::Running => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    Webhook,
    Email,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Webhook => "webhook",
            TargetKind::Email => "email",
        }
    }
    pub fn parse(s: &str) -> Option<TargetKind> {
        match s {
            "webhook" => Some(TargetKind::Webhook),
            "email" => Some(TargetKind::Email),
            _ => None,
        }
    }
}

/// A target as stored, without its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub id: String,
    pub name: String,
    pub kind: TargetKind,
    pub url: Option<String>,
    pub email_to: Vec<String>,
    /// `json` or `slack` (webhooks).
    pub format: String,
    pub has_secret: bool,
    pub events: Vec<String>,
    pub filter_tags: Vec<String>,
    pub filter_statuses: Vec<String>,
    pub filter_templates: Vec<String>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a create or an update writes. `secret_enc: None` on update keeps the secret.
#[derive(Debug, Clone, Default)]
pub struct NewTarget {
    pub name: String,
    pub kind: Option<TargetKind>,
    pub url: Option<String>,
    pub email_to: Vec<String>,
    pub format: String,
    pub secret_enc: Option<Vec<u8>>,
    pub events: Vec<String>,
    pub filter_tags: Vec<String>,
    pub filter_statuses: Vec<String>,
    pub filter_templates: Vec<String>,
    pub enabled: bool,
}

/// An event to deliver: what it is, its key (unique per target), its JSON
/// payload and what the filters look at.
#[derive(Debug, Clone)]
pub struct NotifyEvent {
    pub event: String,
    pub key: String,
    pub payload: serde_json::Value,
    /// Tags of the server concerned (the tag filter matches any of them).
    pub tags: Vec<String>,
    /// The status concerned (job status; a batch's is `completed` when every
    /// job completed, else `failed`); none for worker and schedule events.
    pub status: Option<String>,
    /// The template the job ran, when it came from one.
    pub template: Option<String>,
}

impl Target {
    /// Whether this target wants `ev`: subscribed, and every non-empty
    /// filter matches (a filter on a field the event lacks does not match).
    pub fn matches(&self, ev: &NotifyEvent) -> bool {
        self.enabled
            && self.events.iter().any(|e| e == &ev.event)
            && (self.filter_tags.is_empty() || ev.tags.iter().any(|t| self.filter_tags.contains(t)))
            && (self.filter_statuses.is_empty()
                || ev
                    .status
                    .as_ref()
                    .is_some_and(|s| self.filter_statuses.contains(s)))
            && (self.filter_templates.is_empty()
                || ev
                    .template
                    .as_ref()
                    .is_some_and(|t| self.filter_templates.contains(t)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its (next) attempt.
    Pending,
    /// An API instance holds it and is sending.
    Sending,
    Delivered,
    /// Gave up: every attempt failed for the whole retry window.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sending => "sending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        [
            DeliveryState::Pending,
            DeliveryState::Sending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    pub attempt: i64,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    /// HTTP status (webhooks; SMTP reply code for email), none when no answer came.
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

/// A delivery with its attempts, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: String,
    pub target_id: String,
    pub event: String,
    pub event_key: String,
    pub state: DeliveryState,
    pub attempts: i64,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: i64,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub give_up_at: i64,
    #[serde(with = "remora_domain::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<i64>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub payload: serde_json::Value,
    pub log: Vec<Attempt>,
}

/// A delivery claimed for sending, with what sending needs.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: String,
    pub event: String,
    pub payload: String,
    /// This attempt's number (1 for the first).
    pub attempt: i64,
    pub created_at: i64,
    pub give_up_at: i64,
    pub target: Target,
    pub secret_enc: Option<Vec<u8>>,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub delivered: bool,
    /// When not delivered: the next attempt's time, or none to give up.
    pub retry_at: Option<i64>,
}

const TARGET_COLS: &str = "id, name, kind, url, email_to, format, secret_enc, events, filter_tags, filter_statuses, filter_templates, enabled, created_at, updated_at";

fn json_list(r: &AnyRow, col: &str) -> Result<Vec<String>> {
    let s: String = r.try_get(col)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

fn list_json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn target_from_row(r: &AnyRow) -> Result<(Target, Option<Vec<u8>>)> {
    let kind: String = r.try_get("kind")?;
    let secret: Option<Vec<u8>> = r.try_get("secret_enc")?;
    Ok((
        Target {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            kind: TargetKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("target kind {kind}")))?,
            url: r.try_get("url")?,
            email_to: json_list(r, "email_to")?,
            format: r.try_get("format")?,
            has_secret: secret.is_some(),
            events: json_list(r, "events")?,
            filter_tags: json_list(r, "filter_tags")?,
            filter_statuses: json_list(r, "filter_statuses")?,
            filter_templates: json_list(r, "filter_templates")?,
            enabled: r.try_get::<i64, _>("enabled")? != 0,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        },
        secret,
    ))
}

/// Insert one delivery of `ev` to `target` (nothing if that key was delivered to it already).
async fn insert_delivery(
    conn: &mut sqlx::AnyConnection,
    target_id: &str,
    ev: &NotifyEvent,
    now: i64,
    window_ms: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO notification_deliveries (id, target_id, event, event_key, payload, state, attempts, next_attempt_at, created_at, give_up_at)
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7, $8)
         ON CONFLICT (target_id, event_key) DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(target_id)
    .bind(&ev.event)
    .bind(&ev.key)
    .bind(ev.payload.to_string())
    .bind(DeliveryState::Pending.as_str())
    .bind(now)
    .bind(now + window_ms)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

impl Store {
    pub async fn insert_target(&self, t: &NewTarget) -> Result<Target> {
        let id = uuid::Uuid::now_v7().to_string();
        let now = remora_domain::time::now_ms();
        sqlx::query(&format!(
            "INSERT INTO notification_targets ({TARGET_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)"
        ))
        .bind(&id)
        .bind(&t.name)
        .bind(t.kind.unwrap_or(TargetKind::Webhook).as_str())
        .bind(t.url.clone())
        .bind(list_json(&t.email_to))
        .bind(&t.format)
        .bind(t.secret_enc.clone())
        .bind(list_json(&t.events))
        .bind(list_json(&t.filter_tags))
        .bind(list_json(&t.filter_statuses))
        .bind(list_json(&t.filter_templates))
        .bind(t.enabled as i64)
        .bind(now)
        .execute(&self.write)
        .await
        .map_err(map_unique)?;
        self.get_target(&id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("target vanished".into()))
    }

    /// Replace a target's settings (its kind stays); `secret_enc: None` keeps the secret.
    pub async fn update_target(&self, id: &str, t: &NewTarget) -> Result<Option<Target>> {
        let r = sqlx::query(
            "UPDATE notification_targets SET name = $1, url = $2, email_to = $3, format = $4,
                 secret_enc = COALESCE($5, secret_enc), events = $6, filter_tags = $7,
                 filter_statuses = $8, filter_templates = $9, enabled = $10, updated_at = $11
             WHERE id = $12",
        )
        .bind(&t.name)
        .bind(t.url.clone())
        .bind(list_json(&t.email_to))
        .bind(&t.format)
        .bind(t.secret_enc.clone())
        .bind(list_json(&t.events))
        .bind(list_json(&t.filter_tags))
        .bind(list_json(&t.filter_statuses))
        .bind(list_json(&t.filter_templates))
        .bind(t.enabled as i64)
        .bind(remora_domain::time::now_ms())
        .bind(id)
        .execute(&self.write)
        .await
        .map_err(map_unique)?;
        if r.rows_affected() == 0 {
            return Ok(None);
        }
        self.get_target(id).await
    }

    pub async fn get_target(&self, id: &str) -> Result<Option<Target>> {
        let row = sqlx::query(&format!(
            "SELECT {TARGET_COLS} FROM notification_targets WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.as_ref().map(target_from_row).transpose()?.map(|t| t.0))
    }

    pub async fn list_targets(&self) -> Result<Vec<Target>> {
        let rows = sqlx::query(&format!(
            "SELECT {TARGET_COLS} FROM notification_targets ORDER BY name"
        ))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| Ok(target_from_row(r)?.0)).collect()
    }

    /// Delete a target with its deliveries and their attempts.
    pub async fn delete_target(&self, id: &str) -> Result<bool> {
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        sqlx::query("DELETE FROM notification_attempts WHERE delivery_id IN (SELECT id FROM notification_deliveries WHERE target_id = $1)")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM notification_deliveries WHERE target_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM notification_targets WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Report an event that is not a job's final status (worker down,
    /// schedule skipped, …): one delivery per matching target. Returns how
    /// many deliveries were created (0 when the key was delivered before).
    pub async fn notify_event(&self, ev: &NotifyEvent, window_ms: i64) -> Result<usize> {
        let targets: Vec<Target> = self
            .list_targets()
            .await?
            .into_iter()
            .filter(|t| t.matches(ev))
            .collect();
        if targets.is_empty() {
            return Ok(0);
        }
        let now = remora_domain::time::now_ms();
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        let mut n = 0;
        for t in &targets {
            n += insert_delivery(&mut tx, &t.id, ev, now, window_ms).await? as usize;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Finished jobs not yet dispatched, oldest first.
    pub async fn undispatched_jobs(&self, limit: i64) -> Result<Vec<Job>> {
        // `notified = 0` is spelled out so SQLite uses the partial index.
        let rows = sqlx::query(&format!(
            "SELECT {} FROM jobs WHERE notified = 0 AND finished_at IS NOT NULL ORDER BY finished_at LIMIT {}",
            crate::jobs::JOB_COLS,
            limit.clamp(1, 10_000)
        ))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(crate::jobs::job_from_row).collect()
    }

    /// Whether every job of a batch is final (and whether all completed).
    pub async fn batch_outcome(&self, batch_id: &str) -> Result<Option<(bool, i64)>> {
        let r = sqlx::query(
            "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN status IN ($2, $3) THEN 1 ELSE 0 END), 0) AS BIGINT),
                    CAST(COALESCE(SUM(CASE WHEN status = $4 THEN 1 ELSE 0 END), 0) AS BIGINT)
             FROM jobs WHERE batch_id = $1",
        )
        .bind(batch_id)
        .bind(JobStatus::Queued.as_str())
        .bind(JobStatus::Running.as_str())
        .bind(JobStatus::Completed.as_str())
        .fetch_one(&self.read)
        .await?;
        let (total, open, completed): (i64, i64, i64) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        if total == 0 || open > 0 {
            return Ok(None);
        }
        Ok(Some((completed == total, total)))
    }

    /// Claim these finished jobs for notification and create the deliveries
    /// of the events `events_of` gives for each one claimed, in one write
    /// transaction. A job another instance claimed first is skipped.
    /// Returns the ids claimed here.
    pub async fn dispatch_jobs(
        &self,
        jobs: &[Job],
        targets: &[Target],
        window_ms: i64,
        events_of: impl Fn(&Job) -> Vec<NotifyEvent>,
    ) -> Result<Vec<String>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let list = (0..jobs.len())
            .map(|i| format!("${}", i + 1))
            .collect::<Vec<_>>()
            .join(", ");
        let now = remora_domain::time::now_ms();
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        let sql = format!(
            "UPDATE jobs SET notified = 1 WHERE notified = 0 AND finished_at IS NOT NULL AND id IN ({list}) RETURNING id"
        );
        let mut q = sqlx::query(&sql);
        for j in jobs {
            q = q.bind(&j.id);
        }
        let claimed: Vec<String> = q
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        if !targets.is_empty() {
            for j in jobs.iter().filter(|j| claimed.contains(&j.id)) {
                for ev in events_of(j) {
                    for t in targets.iter().filter(|t| t.matches(&ev)) {
                        insert_delivery(&mut tx, &t.id, &ev, now, window_ms).await?;
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Claim up to `limit` deliveries that are due (or whose sender's lease
    /// ran out) for `claimer`, for `lease_ms`. Each claim counts an attempt.
    pub async fn claim_deliveries(
        &self,
        claimer: &str,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>> {
        let now = remora_domain::time::now_ms();
        let skip = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let due = "((state = $4 AND next_attempt_at <= $3) OR (state = $5 AND lease_until < $3))";
        let rows = sqlx::query(&format!(
            "UPDATE notification_deliveries SET state = $5, claimed_by = $1, lease_until = $2, attempts = attempts + 1
             WHERE {due} AND id IN (SELECT id FROM notification_deliveries WHERE {due} ORDER BY next_attempt_at LIMIT {}{skip})
             RETURNING id, target_id, event, payload, attempts, created_at, give_up_at",
            limit.clamp(1, 1000)
        ))
        .bind(claimer)
        .bind(now + lease_ms)
        .bind(now)
        .bind(DeliveryState::Pending.as_str())
        .bind(DeliveryState::Sending.as_str())
        .fetch_all(&self.write)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let target_id: String = r.try_get(1)?;
            let Some(trow) = sqlx::query(&format!(
                "SELECT {TARGET_COLS} FROM notification_targets WHERE id = $1"
            ))
            .bind(&target_id)
            .fetch_optional(&self.read)
            .await?
            else {
                continue;
            };
            let (target, secret_enc) = target_from_row(&trow)?;
            out.push(ClaimedDelivery {
                id: r.try_get(0)?,
                event: r.try_get(2)?,
                payload: r.try_get(3)?,
                attempt: r.try_get(4)?,
                created_at: r.try_get(5)?,
                give_up_at: r.try_get(6)?,
                target,
                secret_enc,
            });
        }
        Ok(out)
    }

    /// Record an attempt's outcome: delivered, pending again at
    /// `retry_at`, or failed for good. Only the claimer's record counts.
    pub async fn record_attempt(
        &self,
        delivery_id: &str,
        claimer: &str,
        attempt: i64,
        o: &AttemptOutcome,
    ) -> Result<bool> {
        let now = remora_domain::time::now_ms();
        let (state, next) = match (o.delivered, o.retry_at) {
            (true, _) => (DeliveryState::Delivered, now),
            (false, Some(at)) => (DeliveryState::Pending, at),
            (false, None) => (DeliveryState::Failed, now),
        };
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        sqlx::query(
            "INSERT INTO notification_attempts (delivery_id, attempt, at, status_code, latency_ms, error)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (delivery_id, attempt) DO NOTHING",
        )
        .bind(delivery_id)
        .bind(attempt)
        .bind(now)
        .bind(o.status_code)
        .bind(o.latency_ms)
        .bind(o.error.clone())
        .execute(&mut *tx)
        .await?;
        let r = sqlx::query(
            "UPDATE notification_deliveries SET state = $1, next_attempt_at = $2, lease_until = NULL,
                 last_status_code = $3, last_error = $4,
                 delivered_at = CASE WHEN $1 = $8 THEN $5 ELSE delivered_at END
             WHERE id = $6 AND claimed_by = $7 AND state = $9",
        )
        .bind(state.as_str())
        .bind(next)
        .bind(o.status_code)
        .bind(o.error.clone())
        .bind(now)
        .bind(delivery_id)
        .bind(claimer)
        .bind(DeliveryState::Delivered.as_str())
        .bind(DeliveryState::Sending.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// A target's deliveries, newest first, with their attempts.
    pub async fn list_deliveries(&self, target_id: &str, limit: i64) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(&format!(
            "SELECT id, target_id, event, event_key, state, attempts, created_at, next_attempt_at, give_up_at,
                    delivered_at, last_status_code, last_error, payload
             FROM notification_deliveries WHERE target_id = $1 ORDER BY created_at DESC, id DESC LIMIT {}",
            limit.clamp(1, 1000)
        ))
        .bind(target_id)
        .fetch_all(&self.read)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: String = r.try_get("id")?;
            let state: String = r.try_get("state")?;
            let payload: String = r.try_get("payload")?;
            let log = sqlx::query(
                "SELECT attempt, at, status_code, latency_ms, error FROM notification_attempts WHERE delivery_id = $1 ORDER BY attempt",
            )
            .bind(&id)
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|a| {
                Ok(Attempt {
                    attempt: a.try_get(0)?,
                    at: a.try_get(1)?,
                    status_code: a.try_get(2)?,
                    latency_ms: a.try_get(3)?,
                    error: a.try_get(4)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
            out.push(Delivery {
                id,
                target_id: r.try_get("target_id")?,
                event: r.try_get("event")?,
                event_key: r.try_get("event_key")?,
                state: DeliveryState::parse(&state)
                    .ok_or_else(|| StoreError::Corrupt(format!("delivery state {state}")))?,
                attempts: r.try_get("attempts")?,
                created_at: r.try_get("created_at")?,
                next_attempt_at: r.try_get("next_attempt_at")?,
                give_up_at: r.try_get("give_up_at")?,
                delivered_at: r.try_get("delivered_at")?,
                last_status_code: r.try_get("last_status_code")?,
                last_error: r.try_get("last_error")?,
                payload: serde_json::from_str(&payload)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                log,
            });
        }
        Ok(out)
    }

    /// Send a delivery again now (whatever its state, unless it is being
    /// sent), with a fresh retry window. False when there is no such delivery
    /// of that target or it is being sent right now.
    pub async fn redeliver(
        &self,
        target_id: &str,
        delivery_id: &str,
        window_ms: i64,
    ) -> Result<bool> {
        let now = remora_domain::time::now_ms();
        let r = sqlx::query(
            "UPDATE notification_deliveries SET state = $1, next_attempt_at = $2, give_up_at = $3, lease_until = NULL
             WHERE id = $4 AND target_id = $5 AND state <> $6",
        )
        .bind(DeliveryState::Pending.as_str())
        .bind(now)
        .bind(now + window_ms)
        .bind(delivery_id)
        .bind(target_id)
        .bind(DeliveryState::Sending.as_str())
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
