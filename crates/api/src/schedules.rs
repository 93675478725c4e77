//! `/schedules`: a template run on a cron expression in a time zone, and the scheduler tick
//! that fires due times (each exactly once across API instances: a claim in the database).

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use remora_domain::schedule::{jitter_ms, plan_tick, CronSpec, Overlap, MAX_JITTER_SECS};
use remora_store::{RunStatus, ScheduleRow, ScheduleRun};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::warn;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Next run times a schedule's view lists.
pub const NEXT_RUNS: usize = 5;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(next))
        .routes(routes!(runs))
}

/// A schedule with its next run times and its cron in words.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    #[serde(flatten)]
    pub schedule: ScheduleRow,
    /// The template's name.
    pub template: Option<String>,
    /// The cron expression in English (e.g. "At 02:30 every day"), in `timezone`.
    pub description: String,
    /// The next 5 cron times (RFC 3339, UTC), without jitter.
    pub next_runs: Vec<String>,
}

/// A schedule as created or replaced.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    pub name: String,
    /// Template id or name.
    pub template: String,
    /// Parameter values for every run (validated against the template; sealed at rest).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: BTreeMap<String, Value>,
    /// 5 fields (minute hour day-of-month month day-of-week) or @hourly, @daily, @weekly,
    /// @monthly, @yearly.
    pub cron: String,
    /// IANA time zone; default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub overlap: Overlap,
    /// After downtime: one run for the missed due times (true) or none (false, default).
    #[serde(default)]
    pub catch_up: bool,
    /// Start each run up to this many seconds after its due time (0 to 3600; default 0).
    #[serde(default)]
    pub jitter: i64,
}

fn yes() -> bool {
    true
}

fn rfc(ms: i64) -> String {
    remora_domain::time::ms_to_rfc3339(ms)
}

async fn view(state: &AppState, s: ScheduleRow) -> ScheduleView {
    let template = state
        .store
        .get_template(&s.template_id, None)
        .await
        .ok()
        .flatten()
        .map(|t| t.name);
    let (description, next_runs) = match CronSpec::parse(&s.cron, &s.timezone) {
        Ok(spec) => (
            format!("{}, {}", spec.describe(), s.timezone),
            spec.next_runs(remora_domain::time::now_ms(), NEXT_RUNS)
                .into_iter()
                .map(rfc)
                .collect(),
        ),
        Err(e) => (e.to_string(), Vec::new()),
    };
    ScheduleView {
        schedule: s,
        template,
        description,
        next_runs,
    }
}

async fn find(state: &AppState, id: &str) -> ApiResult<ScheduleRow> {
    state
        .store
        .get_schedule(id)
        .await?
        .ok_or_else(|| ApiError::not_found("schedule", id))
}

/// The first due time after `now` and its run time (with jitter).
fn first_due(spec: &CronSpec, id: &str, jitter: i64, now: i64) -> (Option<i64>, Option<i64>) {
    let due = spec.next_after(now);
    (due, due.map(|d| d + jitter_ms(id, d, jitter)))
}

async fn build(
    state: &AppState,
    b: ScheduleBody,
    id: String,
    created_at: i64,
) -> ApiResult<ScheduleRow> {
    let name = b.name.trim().to_string();
    if name.is_empty() || name.len() > crate::templates::MAX_NAME {
        return Err(ApiError::invalid("name", "a name has 1 to 128 characters"));
    }
    let timezone = b.timezone.unwrap_or_else(|| "UTC".into());
    let spec = CronSpec::parse(&b.cron, &timezone).map_err(|e| {
        ApiError::invalid(
            if matches!(e, remora_domain::schedule::ScheduleError::Zone(_)) {
                "timezone"
            } else {
                "cron"
            },
            e.to_string(),
        )
    })?;
    if !(0..=MAX_JITTER_SECS).contains(&b.jitter) {
        return Err(ApiError::invalid(
            "jitter",
            format!("jitter is 0 to {MAX_JITTER_SECS} seconds"),
        ));
    }
    let t = crate::templates::find(state, &b.template).await?;
    remora_domain::template::resolve_params(&t.def.params, &b.params)
        .map_err(|e| ApiError::invalid("params", e.to_string()))?;
    let params_enc = (!b.params.is_empty()).then(|| {
        state
            .vault
            .seal(&serde_json::to_vec(&b.params).unwrap_or_default())
    });
    let (next_due_at, next_run_at) = first_due(&spec, &id, b.jitter, remora_domain::time::now_ms());
    Ok(ScheduleRow {
        id,
        name,
        template_id: t.id,
        params_enc,
        cron: b.cron.trim().to_string(),
        timezone,
        enabled: b.enabled,
        overlap: b.overlap,
        catch_up: b.catch_up,
        jitter_secs: b.jitter,
        next_due_at,
        next_run_at,
        created_at,
        updated_at: remora_domain::time::now_ms(),
    })
}

fn conflict(e: remora_store::StoreError) -> ApiError {
    match e {
        remora_store::StoreError::Conflict { .. } => {
            ApiError::conflict("name", "a schedule with this name exists")
        }
        other => other.into(),
    }
}

/// Every schedule with its next runs.
#[utoipa::path(get, operation_id = "list_schedules", path = "/schedules", tag = "schedules", responses((status = 200, body = Vec<ScheduleView>)))]
async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<ScheduleView>>> {
    let mut out = Vec::new();
    for s in state.store.list_schedules().await? {
        out.push(view(&state, s).await);
    }
    Ok(Json(out))
}

/// Create a schedule.
#[utoipa::path(post, operation_id = "create_schedule", path = "/schedules", tag = "schedules", request_body = ScheduleBody, responses((status = 201, body = ScheduleView), (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(b): JsonBody<ScheduleBody>,
) -> ApiResult<Response> {
    let s = build(
        &state,
        b,
        remora_domain::new_id(),
        remora_domain::time::now_ms(),
    )
    .await?;
    state.store.insert_schedule(&s).await.map_err(conflict)?;
    crate::audit(
        &state,
        &caller,
        "schedule.create",
        "schedule",
        Some(&s.id),
        None,
    )
    .await;
    Ok((StatusCode::CREATED, Json(view(&state, s).await)).into_response())
}

/// A schedule by id or name.
#[utoipa::path(get, operation_id = "get_schedule", path = "/schedules/{id}", tag = "schedules", params(("id" = String, Path)), responses((status = 200, body = ScheduleView), (status = 404, body = crate::openapi::ErrorBody)))]
async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    let s = find(&state, &id).await?;
    Ok(Json(view(&state, s).await))
}

/// Replace a schedule (the next due time is recomputed from now).
#[utoipa::path(put, operation_id = "update_schedule", path = "/schedules/{id}", tag = "schedules", params(("id" = String, Path)), request_body = ScheduleBody, responses((status = 200, body = ScheduleView), (status = 404, body = crate::openapi::ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ScheduleBody>,
) -> ApiResult<Json<ScheduleView>> {
    let cur = find(&state, &id).await?;
    let s = build(&state, b, cur.id.clone(), cur.created_at).await?;
    state.store.update_schedule(&s).await.map_err(conflict)?;
    crate::audit(
        &state,
        &caller,
        "schedule.update",
        "schedule",
        Some(&s.id),
        None,
    )
    .await;
    Ok(Json(view(&state, s).await))
}

/// Delete a schedule and its run history (its jobs stay).
#[utoipa::path(delete, operation_id = "delete_schedule", path = "/schedules/{id}", tag = "schedules", params(("id" = String, Path)), responses((status = 204), (status = 404, body = crate::openapi::ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let s = find(&state, &id).await?;
    state.store.delete_schedule(&s.id).await?;
    crate::audit(
        &state,
        &caller,
        "schedule.delete",
        "schedule",
        Some(&s.id),
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_enabled(
    state: &AppState,
    caller: &Caller,
    id: &str,
    enabled: bool,
) -> ApiResult<Json<ScheduleView>> {
    let mut s = find(state, id).await?;
    s.enabled = enabled;
    if enabled {
        // Resuming starts from now: nothing missed while paused fires.
        let spec = CronSpec::parse(&s.cron, &s.timezone)
            .map_err(|e| ApiError::invalid("cron", e.to_string()))?;
        (s.next_due_at, s.next_run_at) =
            first_due(&spec, &s.id, s.jitter_secs, remora_domain::time::now_ms());
    }
    state.store.update_schedule(&s).await?;
    crate::audit(
        state,
        caller,
        if enabled {
            "schedule.resume"
        } else {
            "schedule.pause"
        },
        "schedule",
        Some(&s.id),
        None,
    )
    .await;
    Ok(Json(view(state, s).await))
}

/// Pause a schedule: no due time fires until it is resumed.
#[utoipa::path(post, path = "/schedules/{id}/pause", tag = "schedules", params(("id" = String, Path)), responses((status = 200, body = ScheduleView), (status = 404, body = crate::openapi::ErrorBody)))]
async fn pause(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    set_enabled(&state, &caller, &id, false).await
}

/// Resume a paused schedule from now (missed due times do not fire).
#[utoipa::path(post, path = "/schedules/{id}/resume", tag = "schedules", params(("id" = String, Path)), responses((status = 200, body = ScheduleView), (status = 404, body = crate::openapi::ErrorBody)))]
async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    set_enabled(&state, &caller, &id, true).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NextQuery {
    /// How many (1 to 100; default 5).
    pub count: Option<usize>,
}

/// The next run times of a schedule (RFC 3339, UTC), without jitter.
#[utoipa::path(get, path = "/schedules/{id}/next", tag = "schedules", params(("id" = String, Path), NextQuery), responses((status = 200, body = Vec<String>), (status = 404, body = crate::openapi::ErrorBody)))]
async fn next(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<NextQuery>,
) -> ApiResult<Json<Vec<String>>> {
    let s = find(&state, &id).await?;
    let n = q.count.unwrap_or(NEXT_RUNS);
    if !(1..=remora_domain::schedule::MAX_NEXT_RUNS).contains(&n) {
        return Err(ApiError::invalid("count", "count is 1 to 100"));
    }
    let spec = CronSpec::parse(&s.cron, &s.timezone)
        .map_err(|e| ApiError::invalid("cron", e.to_string()))?;
    Ok(Json(
        spec.next_runs(remora_domain::time::now_ms(), n)
            .into_iter()
            .map(rfc)
            .collect(),
    ))
}

/// What happened at each due time, newest first (at most 100).
#[utoipa::path(get, path = "/schedules/{id}/runs", tag = "schedules", params(("id" = String, Path)), responses((status = 200, body = Vec<ScheduleRun>), (status = 404, body = crate::openapi::ErrorBody)))]
async fn runs(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ScheduleRun>>> {
    let s = find(&state, &id).await?;
    Ok(Json(state.store.list_schedule_runs(&s.id, 100).await?))
}

/// Start the jobs of a claimed (`firing`) due time and record the outcome.
async fn fire(state: &AppState, s: &ScheduleRow, due: i64) {
    let outcome = async {
        let t = crate::templates::find(state, &s.template_id).await?;
        let params: BTreeMap<String, Value> = match &s.params_enc {
            Some(sealed) => {
                let plain = state.vault.open(sealed).map_err(|_| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "secret_unreadable",
                        "the schedule's parameters cannot be decrypted",
                    )
                })?;
                serde_json::from_slice(&plain).map_err(|_| ApiError::internal())?
            }
            None => BTreeMap::new(),
        };
        crate::templates::run_template(state, &t, &params, None, Some(&s.id)).await
    }
    .await;
    let r = match outcome {
        Ok((jobs, batch_id)) => {
            let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
            state
                .store
                .finish_schedule_run(
                    &s.id,
                    due,
                    RunStatus::Started,
                    &ids,
                    batch_id.as_deref(),
                    None,
                )
                .await
        }
        Err(e) => {
            warn!(schedule_id = %s.id, error = %e.message(), detail = %e, "a schedule's run could not start");
            state
                .store
                .finish_schedule_run(&s.id, due, RunStatus::Failed, &[], None, Some(&e.message()))
                .await
        }
    };
    if let Err(e) = r {
        warn!(schedule_id = %s.id, error = %e, "recording a schedule run failed");
    }
}

/// The `schedule.skipped` notification of a due time this instance skipped.
async fn report_skipped(state: &AppState, s: &ScheduleRow, due_at: i64, reason: &str) {
    let template = match state.store.get_template(&s.template_id, None).await {
        Ok(Some(t)) => Some(t.name),
        _ => None,
    };
    let ev = remora_notify::payload::schedule_skipped_event(
        &s.id,
        &s.name,
        template.as_deref(),
        due_at,
        reason,
    );
    let window = state.cfg.notify.retry_window.as_millis() as i64;
    if let Err(e) = state.store.notify_event(&ev, window).await {
        warn!(schedule_id = %s.id, error = %e, "recording the schedule.skipped notification failed");
    }
}

/// One scheduler pass at `now_ms` (injectable for tests): fire, skip, queue or let pass every
/// due time, then start queued runs whose previous run finished. Returns the due times this
/// instance claimed. Safe to run on several instances at once: each due time is claimed in the
/// database by one of them.
pub async fn tick(state: &AppState, now_ms: i64) -> usize {
    let grace = state.cfg.schedule_grace.as_millis() as i64;
    let due = match state.store.due_schedules(now_ms, 500).await {
        Ok(d) => d,
        Err(e) => {
            warn!(error = %e, "scheduler could not read due schedules");
            return 0;
        }
    };
    let mut claimed = 0;
    for s in due {
        let (Some(old_due), Some(old_run)) = (s.next_due_at, s.next_run_at) else {
            continue;
        };
        let spec = match CronSpec::parse(&s.cron, &s.timezone) {
            Ok(sp) => sp,
            Err(e) => {
                warn!(schedule_id = %s.id, error = %e, "schedule has an invalid cron");
                continue;
            }
        };
        let plan = plan_tick(&spec, old_due, old_run, now_ms, grace, s.catch_up);
        let new_run = plan
            .next_due
            .map(|d| d + jitter_ms(&s.id, d, s.jitter_secs));
        let (record, status, reason) = match (plan.fire, plan.missed) {
            (Some(at), _) => {
                let busy = s.overlap != Overlap::Allow
                    && state.store.schedule_busy(&s.id).await.unwrap_or(false);
                match (busy, s.overlap) {
                    (false, _) | (_, Overlap::Allow) => (at, RunStatus::Firing, None),
                    (true, Overlap::Queue) => (
                        at,
                        RunStatus::Pending,
                        Some("the previous run is still going: queued"),
                    ),
                    (true, _) => (
                        at,
                        RunStatus::Skipped,
                        Some("the previous run is still going"),
                    ),
                }
            }
            (None, Some(at)) => (
                at,
                RunStatus::Missed,
                Some("the scheduler was not running at the due time (catch_up off)"),
            ),
            (None, None) => continue,
        };
        match state
            .store
            .claim_schedule_due(
                &s.id,
                old_due,
                plan.next_due,
                new_run,
                record,
                status,
                reason,
            )
            .await
        {
            Ok(true) => {
                claimed += 1;
                if status == RunStatus::Firing {
                    fire(state, &s, record).await;
                }
                if status == RunStatus::Skipped {
                    // This instance's claim recorded the skip: reported once.
                    report_skipped(state, &s, record, reason.unwrap_or_default()).await;
                }
            }
            Ok(false) => {}
            Err(e) => warn!(schedule_id = %s.id, error = %e, "claiming a due time failed"),
        }
    }
    // Queued runs (overlap `queue`): the oldest of each schedule starts once it is idle.
    let pending = state
        .store
        .pending_schedule_runs(500)
        .await
        .unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    for p in pending {
        if !seen.insert(p.schedule_id.clone()) {
            continue;
        }
        if state
            .store
            .schedule_busy(&p.schedule_id)
            .await
            .unwrap_or(true)
        {
            continue;
        }
        let Ok(Some(s)) = state.store.get_schedule(&p.schedule_id).await else {
            continue;
        };
        if let Ok(true) = state
            .store
            .move_schedule_run(
                &p.schedule_id,
                p.due_at,
                RunStatus::Pending,
                RunStatus::Firing,
            )
            .await
        {
            fire(state, &s, p.due_at).await;
        }
    }
    claimed
}

/// The scheduler loop: a tick every `schedule_tick` until shutdown.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(state.cfg.schedule_tick.max(Duration::from_millis(100)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! { _ = shutdown.cancelled() => return, _ = every.tick() => {} }
        tick(&state, remora_domain::time::now_ms()).await;
    }
}
