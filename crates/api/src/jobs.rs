//! `/jobs`: submit command and script jobs (to one server, several, or a
//! tag), list and read them, read their stored output, cancel them.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::openapi::{BatchCreated, JobList, Logs, Pagination};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use remora_domain::{events, Job, JobEvent, JobOptions, JobSpec, JobStatus, Server, JOBS_QUEUE};
use remora_store::{CancelOutcome, JobFilter};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create_command))
        .routes(routes!(create_script))
        .routes(routes!(get_one))
        .routes(routes!(logs))
        .routes(routes!(stdout))
        .routes(routes!(stderr))
        .routes(routes!(cancel))
        .routes(routes!(duplicate))
        .routes(routes!(rerun))
        .routes(routes!(export))
}

/// 201 body of a submission: the job (one target) or the batch (several).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Created {
    Job(Box<Job>),
    Batch(crate::openapi::BatchCreated),
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DuplicateBody {
    pub server_id: Option<String>,
    pub timeout: Option<i64>,
    pub priority: Option<i64>,
}

/// A new queued job copying `src`, with optional overrides.
pub(crate) async fn copy_job(
    state: &AppState,
    src: &Job,
    o: DuplicateBody,
    batch_id: Option<String>,
) -> ApiResult<Job> {
    let server_id = match &o.server_id {
        Some(s) => crate::lookup::server(state, s).await?.id,
        None => src.server_id.clone(),
    };
    let b = CreateJob {
        timeout: Some(o.timeout.unwrap_or(src.timeout)),
        priority: Some(o.priority.unwrap_or(src.priority)),
        max_retries: Some(src.max_retries),
        args: Some(src.spec.args().to_vec()),
        ..Default::default()
    };
    let (priority, timeout, max_retries, args) = validate_common(state, &b)?;
    let job = Job {
        batch_id,
        priority,
        timeout,
        max_retries,
        options: src.options.clone(),
        ..Job::queued(src.spec.clone().with_args(args), server_id)
    };
    state.store.insert_job(&job).await?;
    crate::background::push_job(state, &job).await;
    Ok(job)
}

fn parse_optional<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::undecodable(e.to_string()))
}

/// Same job again, optionally on another server or with another timeout/priority.
/// Same job again, optionally on another server or with another timeout or priority.
#[utoipa::path(post, path = "/jobs/{id}/duplicate", tag = "jobs", params(("id" = String, Path, description = "Job id")), request_body(content = Option<DuplicateBody>, content_type = "application/json"), responses((status = 201, body = Job), (status = 404, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn duplicate(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Job>)> {
    let src = crate::lookup::job(&state, &id).await?;
    let o: DuplicateBody = parse_optional(&body)?;
    let job = copy_job(&state, &src, o, None).await?;
    crate::audit(
        &state,
        &caller,
        "job.duplicate",
        "job",
        Some(&job.id),
        Some(&src.id),
    )
    .await;
    Ok((StatusCode::CREATED, Json(job)))
}

/// Run a finished job again, unchanged.
/// Run a finished job again, unchanged.
#[utoipa::path(post, path = "/jobs/{id}/rerun", tag = "jobs", params(("id" = String, Path, description = "Job id")), responses((status = 201, body = Job), (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn rerun(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    let src = crate::lookup::job(&state, &id).await?;
    if !src.status.is_final() {
        return Err(ApiError::clash(
            "not_finished",
            format!(
                "job `{id}` is still {}; rerun it once it has ended, or duplicate it",
                src.status
            ),
        ));
    }
    let job = copy_job(&state, &src, DuplicateBody::default(), None).await?;
    crate::audit(
        &state,
        &caller,
        "job.rerun",
        "job",
        Some(&job.id),
        Some(&src.id),
    )
    .await;
    Ok((StatusCode::CREATED, Json(job)))
}

/// Every job of a batch, oldest first. The store serves at most 1,000 jobs a
/// page, so a batch of more hosts is read page by page.
pub(crate) async fn batch_jobs(state: &AppState, id: &str) -> ApiResult<Vec<Job>> {
    let mut jobs = Vec::new();
    for page in 1.. {
        let f = JobFilter {
            page,
            limit: 1000,
            batch_id: Some(id.to_string()),
            ascending: true,
            ..Default::default()
        };
        let p = state.store.list_jobs_page(&f).await?;
        jobs.extend(p.items);
        if !p.has_next {
            break;
        }
    }
    if jobs.is_empty() {
        return Err(ApiError::not_found("batch", id));
    }
    Ok(jobs)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    pub date: Option<String>,
}

/// Finished jobs of one UTC day as NDJSON, streamed in pages.
/// Finished jobs of one UTC day as NDJSON.
#[utoipa::path(get, path = "/jobs/export", tag = "jobs", params(ExportQuery), responses((status = 200, content_type = "application/x-ndjson", body = String), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn export(
    State(state): State<AppState>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let date = q.date.ok_or_else(|| ApiError::missing("date"))?;
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(&date, &fmt)
        .map_err(|_| ApiError::invalid("date", "date must be YYYY-MM-DD"))?;
    let from = (day.midnight().assume_utc().unix_timestamp()) * 1000;
    let to = from + 86_400_000;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut after: Option<(i64, String)> = None;
        loop {
            let page = match state
                .store
                .finished_between(from, to, after.clone(), 1000)
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            if page.is_empty() {
                return;
            }
            let mut buf = Vec::new();
            for j in &page {
                if let Ok(line) = serde_json::to_vec(j) {
                    buf.extend_from_slice(&line);
                    buf.push(b'\n');
                }
            }
            let last = page
                .last()
                .map(|j| (j.finished_at.unwrap_or(0), j.id.clone()));
            if tx.send(Ok(buf.into())).await.is_err() {
                return;
            }
            after = last;
        }
    });
    let body = axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"remora-jobs-{date}.ndjson\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// A command job (`command`) or a script job (`script`, `shell`) for `server_id`, `server_ids` or `tag`.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJob {
    pub command: Option<String>,
    pub script: Option<String>,
    pub shell: Option<String>,
    pub args: Option<Vec<String>>,
    pub server_id: Option<String>,
    pub server_ids: Option<Vec<String>>,
    pub tag: Option<String>,
    pub timeout: Option<i64>,
    pub priority: Option<i64>,
    pub max_retries: Option<i64>,
    /// Batch only: most hosts running at once, a count or `"N%"` of the targets.
    pub max_parallel: Option<crate::batches::PolicyLimit>,
    /// Batch only: failed or timed-out hosts (count or `"N%"`) after which the batch stops.
    pub fail_threshold: Option<crate::batches::PolicyLimit>,
    /// Batch only: `stop` (default; running hosts finish) or `abort` (they are canceled too).
    pub on_fail_threshold: Option<remora_domain::batch::OnFail>,
    /// Command jobs only: run on a pseudo-terminal (for commands that insist on one);
    /// stdout and stderr then arrive merged, as stdout. See docs/jobs.md.
    pub pty: Option<bool>,
    /// Run under sudo as `become_user` (default root), with the server's `sudo_password`
    /// when it has one. sudo refusing ends the job `failed` with `become_failed`.
    #[serde(rename = "become")]
    #[schema(rename = "become")]
    pub sudo: Option<bool>,
    /// The user `become` switches to (`[A-Za-z_][A-Za-z0-9_.-]*`, at most 32 bytes); default root.
    pub become_user: Option<String>,
    /// Environment variables for the job: names `[A-Za-z_][A-Za-z0-9_]*`, values any text
    /// without NUL, passed verbatim (no shell interprets them). Stored and returned with the
    /// job: not for secrets. At most `REMORA_MAX_ENV_VARS` entries and `REMORA_MAX_ENV_BYTES`.
    pub env: Option<std::collections::BTreeMap<String, String>>,
}

/// The pty, become and env options of a submission, checked.
fn job_options(state: &AppState, b: &CreateJob, spec: &JobSpec) -> ApiResult<JobOptions> {
    use remora_domain::command::TextError;
    let env = b.env.clone().unwrap_or_default();
    let pairs: Vec<(String, String)> = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    remora_domain::command::check_env_within(&pairs, state.cfg.text_limits).map_err(|e| {
        let msg = match &e {
            TextError::Nul(_) => "env values must not contain NUL bytes".to_string(),
            _ => e.to_string(),
        };
        ApiError::invalid("env", msg)
    })?;
    let pty = b.pty.unwrap_or(false);
    if pty && matches!(spec, JobSpec::Script { .. }) {
        return Err(ApiError::invalid(
            "pty",
            "`pty` is for command jobs (a terminal has no end of input for a script on stdin)",
        ));
    }
    let sudo = b.sudo.unwrap_or(false);
    if let Some(u) = &b.become_user {
        if !sudo {
            return Err(ApiError::invalid(
                "become_user",
                "`become_user` needs `become: true`",
            ));
        }
        if !valid_user_name(u) {
            return Err(ApiError::invalid(
                "become_user",
                format!("`{u}` is not a user name ([A-Za-z_][A-Za-z0-9_.-]*, at most 32 bytes)"),
            ));
        }
    }
    Ok(JobOptions {
        pty,
        sudo,
        become_user: b.become_user.clone(),
        env,
    })
}

/// A user name sudo may be given: `[A-Za-z_][A-Za-z0-9_.-]*`, at most 32 bytes.
fn valid_user_name(u: &str) -> bool {
    let mut c = u.chars();
    u.len() <= 32
        && matches!(c.next(), Some(f) if f == '_' || f.is_ascii_alphabetic())
        && c.all(|x| x == '_' || x == '.' || x == '-' || x.is_ascii_alphanumeric())
}

/// The servers a submission targets, and whether it is a batch.
async fn targets(state: &AppState, b: &CreateJob) -> ApiResult<(Vec<Server>, bool)> {
    let given = [
        b.server_id.is_some(),
        b.server_ids.is_some(),
        b.tag.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if given == 0 {
        return Err(ApiError::missing("server_id"));
    }
    if given > 1 {
        return Err(ApiError::invalid(
            "server_id",
            "give exactly one of `server_id`, `server_ids` or `tag`",
        ));
    }
    if let Some(id) = &b.server_id {
        return Ok((vec![crate::lookup::server(state, id).await?], false));
    }
    if let Some(ids) = &b.server_ids {
        if ids.is_empty() {
            return Err(ApiError::invalid(
                "server_ids",
                "server_ids must not be empty",
            ));
        }
        if ids.len() > state.cfg.max_batch_hosts {
            return Err(ApiError::invalid(
                "server_ids",
                format!(
                    "at most {} servers per submission (REMORA_MAX_BATCH_HOSTS)",
                    state.cfg.max_batch_hosts
                ),
            ));
        }
        let mut out: Vec<Server> = Vec::new();
        for id in ids {
            let s = crate::lookup::server(state, id).await?;
            if !out.iter().any(|o| o.id == s.id) {
                out.push(s);
            }
        }
        return Ok((out, true));
    }
    let tag = b.tag.clone().unwrap_or_default();
    let servers: Vec<Server> = state
        .store
        .list_servers()
        .await?
        .into_iter()
        .filter(|s| s.is_active && s.tags.contains(&tag))
        .collect();
    if servers.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no active server has the tag `{tag}`"),
        )
        .with_field("tag"));
    }
    if servers.len() > state.cfg.max_batch_hosts {
        return Err(ApiError::invalid(
            "tag",
            format!(
                "the tag `{tag}` matches {} servers; at most {} per submission (REMORA_MAX_BATCH_HOSTS)",
                servers.len(),
                state.cfg.max_batch_hosts
            ),
        ));
    }
    Ok((servers, true))
}

fn validate_common(state: &AppState, b: &CreateJob) -> ApiResult<(i64, i64, i64, Vec<String>)> {
    let priority = b.priority.unwrap_or(5);
    if !(1..=10).contains(&priority) {
        return Err(ApiError::invalid(
            "priority",
            "priority must be between 1 and 10",
        ));
    }
    let timeout = b.timeout.unwrap_or(0);
    if timeout < 0 || timeout > state.cfg.max_timeout {
        return Err(ApiError::invalid(
            "timeout",
            format!(
                "timeout must be between 0 (no limit) and {} seconds",
                state.cfg.max_timeout
            ),
        ));
    }
    let max_retries = b.max_retries.unwrap_or(state.cfg.default_max_retries);
    if !(0..=10).contains(&max_retries) {
        return Err(ApiError::invalid(
            "max_retries",
            "max_retries must be between 0 and 10",
        ));
    }
    let args = b.args.clone().unwrap_or_default();
    if args.len() > 1000 {
        return Err(ApiError::invalid("args", "at most 1000 args"));
    }
    if args.iter().any(|a| a.contains('\0')) {
        return Err(ApiError::invalid("args", "args must not contain NUL bytes"));
    }
    Ok((priority, timeout, max_retries, args))
}

/// Submit a command job to one server (201 job) or several (201 batch).
#[utoipa::path(post, path = "/jobs", tag = "jobs", request_body = CreateJob, responses((status = 201, body = Created), (status = 400, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn create_command(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(b): JsonBody<CreateJob>,
) -> ApiResult<Response> {
    let command = b
        .command
        .clone()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ApiError::missing("command"))?;
    if b.script.is_some() || b.shell.is_some() {
        return Err(ApiError::invalid(
            "script",
            "`script` and `shell` belong to POST /api/v1/jobs/script",
        ));
    }
    let spec = JobSpec::Command {
        command,
        args: Vec::new(),
    };
    submit(state, &caller, b, spec).await
}

/// Submit a script job: the script goes on stdin to `<shell> -s --` (sh-like shells) or `<shell> -` (python3, perl, ruby, node) with the args; see docs/jobs.md.
#[utoipa::path(post, path = "/jobs/script", tag = "jobs", request_body = CreateJob, responses((status = 201, body = Created), (status = 400, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn create_script(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(b): JsonBody<CreateJob>,
) -> ApiResult<Response> {
    let script = b
        .script
        .clone()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ApiError::missing("script"))?;
    if b.command.is_some() {
        return Err(ApiError::invalid(
            "command",
            "a script job takes `script`, not `command`",
        ));
    }
    let shell = b
        .shell
        .clone()
        .unwrap_or_else(|| remora_domain::DEFAULT_SHELL.to_string());
    if !state.cfg.allowed_shells.contains(&shell) {
        return Err(ApiError::invalid(
            "shell",
            format!(
                "shell `{shell}` is not allowed; allowed: {}",
                state.cfg.allowed_shells.join(", ")
            ),
        ));
    }
    let spec = JobSpec::Script {
        script,
        args: Vec::new(),
        shell,
    };
    submit(state, &caller, b, spec).await
}

/// The size limits and NUL check of a job's text, as a 422 naming the
/// limit and its variable (before anything is stored or sent).
fn check_text(spec: &JobSpec, limits: remora_domain::command::TextLimits) -> ApiResult<()> {
    use remora_domain::command::TextError;
    remora_domain::command::check_spec(spec, limits).map_err(|e| {
        let field = match &e {
            TextError::TooLarge { field, .. } | TextError::Nul(field) => *field,
            TextError::EnvName(_) | TextError::TooMany { .. } => "env",
        };
        ApiError::invalid(field, e.to_string())
    })
}

async fn submit(
    state: AppState,
    caller: &Caller,
    b: CreateJob,
    spec: JobSpec,
) -> ApiResult<Response> {
    let (priority, timeout, max_retries, args) = validate_common(&state, &b)?;
    let spec = spec.with_args(args.clone());
    check_text(&spec, state.cfg.text_limits)?;
    let options = job_options(&state, &b, &spec)?;
    // One server by id or name: resolved in the submission's own transaction (no read of the
    // server before it; `Store::submit_job_to`), a 404 when there is none.
    let single = match (&b.server_id, &b.server_ids, &b.tag) {
        (Some(id), None, None) => Some(id.clone()),
        _ => None,
    };
    let (servers, batch) = match &single {
        Some(id) => (vec![id.clone()], false),
        None => {
            let (servers, batch) = targets(&state, &b).await?;
            (servers.into_iter().map(|s| s.id).collect(), batch)
        }
    };
    let batch_id = batch.then(remora_domain::new_id);
    let mut jobs = Vec::with_capacity(servers.len());
    for server_id in &servers {
        let job = Job {
            batch_id: batch_id.clone(),
            priority,
            timeout,
            max_retries,
            options: options.clone(),
            ..Job::queued(spec.clone().with_args(args.clone()), server_id.clone())
        };
        jobs.push(job);
    }
    // One write for the whole submission (the batch's policy row, its jobs and the audit row,
    // in one transaction of the store's group-commit writer), then every push at once, after
    // the answer: with `--fsync always` the queue's group commit makes them one fsync.
    let row = match &batch_id {
        Some(id) => Some(crate::batches::policy_row(&b, id, jobs.len(), None)?),
        None => {
            crate::batches::refuse_policy(&b)?;
            None
        }
    };
    let first = jobs.first().map(|j| j.id.clone());
    let audit = remora_store::NewAudit {
        token_id: Some(caller.token_id.clone()),
        action: "job.submit".into(),
        object_type: if batch { "batch" } else { "job" }.into(),
        object_id: batch_id.clone().or(first),
        detail: None,
    };
    match &single {
        Some(named) => match state
            .store
            .submit_job_to(named, &jobs[0], Some(audit))
            .await?
        {
            Some(id) => jobs[0].server_id = id,
            None => return Err(ApiError::not_found("server", named)),
        },
        None => {
            state
                .store
                .submit_jobs(row.as_ref(), &jobs, Some(audit))
                .await?
        }
    }
    crate::background::push_jobs_in_background(&state, &jobs);
    tracing::info!(jobs = jobs.len(), batch_id = ?batch_id, "jobs submitted");
    if let (false, Some(job)) = (batch, jobs.first()) {
        return Ok((
            StatusCode::CREATED,
            Json(Created::Job(Box::new(job.clone()))),
        )
            .into_response());
    }
    Ok((
        StatusCode::CREATED,
        Json(Created::Batch(BatchCreated { batch_id, jobs })),
    )
        .into_response())
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 1,000,000 (default 1).
    pub page: Option<i64>,
    pub limit: Option<i64>,
    pub status: Option<String>,
    pub server_id: Option<String>,
    pub batch_id: Option<String>,
    /// Case-insensitive substring of the job's id, command or script (counted up to
    /// `REMORA_SEARCH_COUNT_CAP` matches).
    pub search: Option<String>,
    /// created_at, started_at, finished_at, priority or status
    pub sort_by: Option<String>,
    /// asc or desc (default)
    pub sort_order: Option<String>,
    /// RFC 3339; jobs created at or after.
    pub created_after: Option<String>,
    /// RFC 3339; jobs created before.
    pub created_before: Option<String>,
}

/// The highest `page` a job list accepts (page × limit stays far from
/// overflowing an SQL OFFSET; 1,000,000 pages of 200 is 200 million jobs).
pub const MAX_PAGE: i64 = 1_000_000;

/// Jobs, newest first by default; never with output bodies.
#[utoipa::path(get, operation_id = "list_jobs", path = "/jobs", tag = "jobs", params(ListQuery), responses((status = 200, body = JobList), (status = 400, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<JobList>> {
    let Query(q) =
        q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    let page = q.page.unwrap_or(1);
    if page < 1 {
        return Err(ApiError::invalid("page", "page starts at 1"));
    }
    if page > MAX_PAGE {
        return Err(ApiError::invalid(
            "page",
            format!("page must be at most {MAX_PAGE}"),
        ));
    }
    let limit = q.limit.unwrap_or(20);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "limit must be between 1 and 200",
        ));
    }
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse::<JobStatus>()
                .map_err(|e| ApiError::invalid("status", e.to_string()))?,
        ),
    };
    if let Some(sb) = &q.sort_by {
        if ![
            "created_at",
            "started_at",
            "finished_at",
            "priority",
            "status",
        ]
        .contains(&sb.as_str())
        {
            return Err(ApiError::invalid(
                "sort_by",
                "sort_by must be one of created_at, started_at, finished_at, priority, status",
            ));
        }
    }
    let ascending = match q.sort_order.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                "sort_order",
                "sort_order must be `asc` or `desc`",
            ))
        }
    };
    let time = |field: &str, v: &Option<String>| -> ApiResult<Option<i64>> {
        match v.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(t) => remora_domain::time::rfc3339_to_ms(t)
                .map(Some)
                .ok_or_else(|| ApiError::invalid(field, format!("`{t}` is not an RFC 3339 time"))),
        }
    };
    let created_after = time("created_after", &q.created_after)?;
    let created_before = time("created_before", &q.created_before)?;
    // A substring match is counted by reading matches one by one; a search's
    // count stops sooner than a plain list's.
    let count_cap = match q.search.as_deref() {
        Some(s) if !s.is_empty() => state.cfg.search_count_cap,
        _ => state.cfg.list_count_cap,
    };
    let f = JobFilter {
        page,
        limit,
        status,
        server_id: q.server_id,
        batch_id: q.batch_id,
        search: q.search,
        sort_by: q.sort_by,
        ascending,
        created_after,
        created_before,
        count_cap,
    };
    let p = state.store.list_jobs_page(&f).await?;
    let total_pages = (p.total + limit - 1) / limit;
    Ok(Json(JobList {
        jobs: p.items,
        pagination: Pagination {
            page,
            limit,
            total: p.total,
            total_exact: p.total_exact,
            total_pages,
            has_next: p.has_next,
            has_prev: page > 1,
        },
    }))
}

/// One job.
#[utoipa::path(get, operation_id = "get_job", path = "/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "Job id")), responses((status = 200, body = Job), (status = 404, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Job>> {
    Ok(Json(crate::lookup::job(&state, &id).await?))
}

/// Stored output and outcome (lossy UTF-8; `/stdout` and `/stderr` give exact bytes).
#[utoipa::path(get, path = "/jobs/{id}/logs", tag = "jobs", params(("id" = String, Path, description = "Job id")), responses((status = 200, body = Logs), (status = 404, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn logs(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Logs>> {
    let job = crate::lookup::job(&state, &id).await?;
    let (out, err) = state.store.job_output(&id).await?;
    Ok(Json(Logs {
        job_id: job.id,
        status: job.status,
        exit_code: job.exit_code,
        exit_signal: job.exit_signal,
        error: job.error,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
        stdout_bytes: job.stdout_bytes,
        stderr_bytes: job.stderr_bytes,
        truncated: job.truncated,
    }))
}

async fn raw(state: AppState, id: String, stdout: bool) -> ApiResult<Response> {
    let job = crate::lookup::job(&state, &id).await?;
    let (out, err) = state.store.job_output(&id).await?;
    let body = if stdout { out } else { err };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (
                header::HeaderName::from_static("x-remora-truncated"),
                job.truncated.to_string(),
            ),
            (
                header::HeaderName::from_static("x-remora-status"),
                job.status.to_string(),
            ),
        ],
        body,
    )
        .into_response())
}

/// Stored stdout, bytes-exact.
#[utoipa::path(get, path = "/jobs/{id}/stdout", tag = "jobs", params(("id" = String, Path, description = "Job id")), responses((status = 200, content_type = "text/plain", body = String), (status = 404, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn stdout(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    raw(state, id, true).await
}

/// Stored stderr, bytes-exact.
#[utoipa::path(get, path = "/jobs/{id}/stderr", tag = "jobs", params(("id" = String, Path, description = "Job id")), responses((status = 200, content_type = "text/plain", body = String), (status = 404, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn stderr(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    raw(state, id, false).await
}

/// Cancel: a queued job at once; a running one has its remote process tree killed.
#[utoipa::path(post, path = "/jobs/{id}/cancel", tag = "jobs", params(("id" = String, Path, description = "Job id")), responses((status = 202, body = Job), (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    match state.store.request_cancel(&id).await? {
        CancelOutcome::NotFound => return Err(ApiError::not_found("job", &id)),
        CancelOutcome::AlreadyFinal(st) => {
            return Err(ApiError::clash(
                "already_finished",
                format!("job `{id}` already ended as {st}"),
            ));
        }
        CancelOutcome::CanceledQueued => {
            let _ = state.queue.cancel(JOBS_QUEUE, &id).await;
            let m = JobEvent::new(&id, JobStatus::Canceled, None).message();
            let _ = state.queue.publish(&m.topic, m.payload.into()).await;
        }
        CancelOutcome::Requested => {
            let m = events::cancel_message(&id);
            let _ = state.queue.publish(&m.topic, m.payload.into()).await;
        }
    }
    tracing::info!(job_id = %id, "cancel requested");
    crate::audit(&state, &caller, "job.cancel", "job", Some(&id), None).await;
    let job = crate::lookup::job(&state, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}
