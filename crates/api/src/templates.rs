//! `/templates`: saved jobs with typed parameters and versions, running them, and their
//! incoming-trigger tokens (`/hooks/{token}`, outside bearer auth: the token is the credential).

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::jobs::Created;
use crate::openapi::BatchCreated;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use remora_domain::template::{resolve_params, ParamValue, Targets, TemplateDef};
use remora_domain::{Job, JobSpec, Server};
use remora_store::{JobOrigin, TemplateRow, TriggerRow};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Longest template name.
pub const MAX_NAME: usize = 128;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(versions))
        .routes(routes!(run))
        .routes(routes!(list_triggers, create_trigger))
        .routes(routes!(revoke_trigger))
}

/// Routes that authenticate by their own token (mounted outside `require_token`).
pub fn hooks_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(hook))
}

/// A template as created or edited: `name` beside the fields of a version (`TemplateDef`), in
/// one object, as `parse_body` reads it. Documented as `TemplateDef`'s schema with a `name`
/// property added (an `allOf` with `TemplateDef`, which refuses unknown fields, would contradict
/// itself).
pub struct TemplateBody;

impl utoipa::PartialSchema for TemplateBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
        use utoipa::openapi::RefOr;
        let mut s = <TemplateDef as utoipa::PartialSchema>::schema();
        if let RefOr::T(Schema::Object(o)) = &mut s {
            o.properties.insert(
                "name".into(),
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(128))
                    .description(Some(
                        "Unique; 1 to 128 characters. Required on create, optional on edit (keeps the name).",
                    ))
                    .into(),
            );
            o.description = Some(
                "A template as created or edited: `name` and the fields of a version (`TemplateDef`)."
                    .into(),
            );
        }
        s
    }
}

impl utoipa::ToSchema for TemplateBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "TemplateBody".into()
    }
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <TemplateDef as utoipa::ToSchema>::schemas(schemas)
    }
}

/// Split `{"name": …, <TemplateDef fields>}`; `need_name` on create.
fn parse_body(
    state: &AppState,
    body: Value,
    need_name: bool,
) -> ApiResult<(Option<String>, TemplateDef)> {
    let Value::Object(mut m) = body else {
        return Err(ApiError::invalid("body", "expected a JSON object"));
    };
    let name = match m.remove("name") {
        Some(Value::String(n)) => {
            let n = n.trim().to_string();
            if n.is_empty() || n.len() > MAX_NAME {
                return Err(ApiError::invalid(
                    "name",
                    format!("a name has 1 to {MAX_NAME} characters"),
                ));
            }
            Some(n)
        }
        Some(_) => return Err(ApiError::invalid("name", "name is a string")),
        None if need_name => return Err(ApiError::missing("name")),
        None => None,
    };
    let def: TemplateDef = serde_json::from_value(Value::Object(m))
        .map_err(|e| ApiError::invalid("body", e.to_string()))?;
    def.check().map_err(|e| ApiError::invalid("params", e))?;
    let (text, limit, what) = match (def.command.as_deref(), def.script.as_deref()) {
        (Some(c), _) => (c, state.cfg.text_limits.max_command_bytes, "command"),
        (None, Some(s)) => (s, state.cfg.text_limits.max_script_bytes, "script"),
        (None, None) => ("", usize::MAX, "command"),
    };
    if text.len() > limit || text.contains('\0') {
        return Err(ApiError::invalid(
            what,
            format!(
                "{what} is at most {limit} bytes (REMORA_MAX_{}_BYTES), without NUL",
                what.to_uppercase()
            ),
        ));
    }
    if let Some(sh) = def.shell.as_ref() {
        if !state.cfg.allowed_shells.contains(sh) {
            return Err(ApiError::invalid(
                "shell",
                format!(
                    "shell `{sh}` is not allowed; allowed: {}",
                    state.cfg.allowed_shells.join(", ")
                ),
            ));
        }
    }
    if def.timeout > state.cfg.max_timeout {
        return Err(ApiError::invalid(
            "timeout",
            format!("timeout is at most {} seconds", state.cfg.max_timeout),
        ));
    }
    if def.max_retries > 10 {
        return Err(ApiError::invalid(
            "max_retries",
            "max_retries must be between 0 and 10",
        ));
    }
    Ok((name, def))
}

pub async fn find(state: &AppState, id_or_name: &str) -> ApiResult<TemplateRow> {
    state
        .store
        .get_template(id_or_name, None)
        .await?
        .ok_or_else(|| ApiError::not_found("template", id_or_name))
}

/// Every template at its current version.
#[utoipa::path(get, operation_id = "list_templates", path = "/templates", tag = "templates", responses((status = 200, body = Vec<TemplateRow>)))]
async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<TemplateRow>>> {
    Ok(Json(state.store.list_templates().await?))
}

/// Create a template (version 1).
#[utoipa::path(post, operation_id = "create_template", path = "/templates", tag = "templates", request_body = TemplateBody, responses((status = 201, body = TemplateRow), (status = 409, body = crate::openapi::ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let (name, def) = parse_body(&state, body, true)?;
    let name = name.unwrap_or_default();
    let t = state
        .store
        .insert_template(&name, &def)
        .await
        .map_err(|e| match e {
            remora_store::StoreError::Conflict { .. } => {
                ApiError::conflict("name", format!("a template named `{name}` exists"))
            }
            other => other.into(),
        })?;
    crate::audit(
        &state,
        &caller,
        "template.create",
        "template",
        Some(&t.id),
        None,
    )
    .await;
    Ok((StatusCode::CREATED, Json(t)).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    /// A past version (default: the current one).
    pub version: Option<i64>,
}

/// A template by id or name, at its current version or `?version=`.
#[utoipa::path(get, operation_id = "get_template", path = "/templates/{id}", tag = "templates", params(("id" = String, Path), VersionQuery), responses((status = 200, body = TemplateRow), (status = 404, body = crate::openapi::ErrorBody)))]
async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<VersionQuery>,
) -> ApiResult<Json<TemplateRow>> {
    state
        .store
        .get_template(&id, q.version)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("template", &id))
}

/// Edit a template: the body replaces the definition and becomes the next version.
#[utoipa::path(put, operation_id = "update_template", path = "/templates/{id}", tag = "templates", params(("id" = String, Path)), request_body = TemplateBody, responses((status = 200, body = TemplateRow), (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<TemplateRow>> {
    let cur = find(&state, &id).await?;
    let (name, def) = parse_body(&state, body, false)?;
    let t = state
        .store
        .update_template(&cur.id, name.as_deref(), &def)
        .await?
        .ok_or_else(|| ApiError::not_found("template", &id))?;
    crate::audit(
        &state,
        &caller,
        "template.update",
        "template",
        Some(&t.id),
        Some(&format!("version {}", t.version)),
    )
    .await;
    Ok(Json(t))
}

/// Delete a template (refused while a schedule uses it). Its jobs keep their record.
#[utoipa::path(delete, operation_id = "delete_template", path = "/templates/{id}", tag = "templates", params(("id" = String, Path)), responses((status = 204), (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let t = find(&state, &id).await?;
    state
        .store
        .delete_template(&t.id)
        .await
        .map_err(|e| match e {
            remora_store::StoreError::Conflict { .. } => ApiError::conflict(
                "id",
                "a schedule uses this template; delete the schedule first",
            ),
            other => other.into(),
        })?;
    crate::audit(
        &state,
        &caller,
        "template.delete",
        "template",
        Some(&t.id),
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Every version of a template, newest first.
#[utoipa::path(get, path = "/templates/{id}/versions", tag = "templates", params(("id" = String, Path)), responses((status = 200, body = Vec<TemplateRow>), (status = 404, body = crate::openapi::ErrorBody)))]
async fn versions(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<TemplateRow>>> {
    let t = find(&state, &id).await?;
    Ok(Json(state.store.list_template_versions(&t.id).await?))
}

/// Parameters and an optional target override for a run.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// Values by parameter name (strings, numbers or booleans; typed by the template).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: BTreeMap<String, Value>,
    /// Instead of the template's default targets.
    #[serde(default)]
    pub targets: Option<Targets>,
}

/// Run a template: one job (one target) or a batch. Parameter values reach the host only as
/// environment variables `REMORA_PARAM_<NAME>`.
#[utoipa::path(post, path = "/templates/{id}/run", tag = "templates", params(("id" = String, Path)), request_body = RunBody, responses((status = 201, body = Created), (status = 404, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody)))]
async fn run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let b: RunBody = if body.is_empty() {
        RunBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid("body", e.to_string()))?
    };
    let t = find(&state, &id).await?;
    let (jobs, batch_id) = run_template(&state, &t, &b.params, b.targets.as_ref(), None).await?;
    crate::audit(
        &state,
        &caller,
        "template.run",
        "template",
        Some(&t.id),
        Some(&format!("version {}, {} job(s)", t.version, jobs.len())),
    )
    .await;
    Ok(created(jobs, batch_id))
}

pub fn created(jobs: Vec<Job>, batch_id: Option<String>) -> Response {
    if batch_id.is_none() && jobs.len() == 1 {
        let job = jobs.into_iter().next().expect("one job");
        return (StatusCode::CREATED, Json(Created::Job(Box::new(job)))).into_response();
    }
    (
        StatusCode::CREATED,
        Json(Created::Batch(BatchCreated { batch_id, jobs })),
    )
        .into_response()
}

async fn resolve_targets(state: &AppState, t: &Targets) -> ApiResult<(Vec<Server>, bool)> {
    if t.is_empty() {
        return Err(ApiError::invalid(
            "targets",
            "the template has no default targets; give `targets` (servers or tag)",
        ));
    }
    if t.servers.len() > 1000 {
        return Err(ApiError::invalid("targets", "at most 1000 servers per run"));
    }
    let mut out: Vec<Server> = Vec::new();
    for id in &t.servers {
        let s = crate::lookup::server(state, id).await?;
        if !out.iter().any(|o| o.id == s.id) {
            out.push(s);
        }
    }
    if let Some(tag) = &t.tag {
        let tagged: Vec<Server> = state
            .store
            .list_servers()
            .await?
            .into_iter()
            .filter(|s| s.is_active && s.tags.contains(tag))
            .collect();
        if tagged.is_empty() && out.is_empty() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no active server has the tag `{tag}`"),
            )
            .with_field("targets"));
        }
        for s in tagged {
            if !out.iter().any(|o| o.id == s.id) {
                out.push(s);
            }
        }
    }
    let batch = out.len() > 1 || t.tag.is_some();
    Ok((out, batch))
}

/// Create (and push) the jobs of one run of template `t` at its current version.
pub async fn run_template(
    state: &AppState,
    t: &TemplateRow,
    params: &BTreeMap<String, Value>,
    targets: Option<&Targets>,
    schedule_id: Option<&str>,
) -> ApiResult<(Vec<Job>, Option<String>)> {
    let def = &t.def;
    let mut values: Vec<ParamValue> = resolve_params(&def.params, params)
        .map_err(|e| ApiError::invalid("params", e.to_string()))?;
    for (k, v) in &def.env {
        values.push(ParamValue {
            env: k.clone(),
            value: v.clone(),
            secret: false,
        });
    }
    let (servers, batch) = resolve_targets(state, targets.unwrap_or(&def.targets)).await?;
    let spec = match (&def.command, &def.script) {
        (Some(c), _) => JobSpec::Command {
            command: c.clone(),
            args: Vec::new(),
        },
        (None, Some(s)) => JobSpec::Script {
            script: s.clone(),
            args: Vec::new(),
            shell: def
                .shell
                .clone()
                .unwrap_or_else(|| remora_domain::DEFAULT_SHELL.to_string()),
        },
        (None, None) => return Err(ApiError::internal()),
    };
    let batch_id = batch.then(remora_domain::new_id);
    let jobs: Vec<Job> = servers
        .iter()
        .map(|s| Job {
            batch_id: batch_id.clone(),
            priority: def.priority,
            timeout: def.timeout,
            max_retries: def.max_retries,
            template_id: Some(t.id.clone()),
            template_version: Some(t.version),
            schedule_id: schedule_id.map(str::to_string),
            options: remora_domain::JobOptions {
                sudo: def.sudo,
                become_user: def.become_user.clone(),
                ..Default::default()
            },
            ..Job::queued(spec.clone(), s.id.clone())
        })
        .collect();
    let params_enc = (!values.is_empty()).then(|| {
        state
            .vault
            .seal(&serde_json::to_vec(&values).unwrap_or_default())
    });
    let origin = JobOrigin {
        template_id: t.id.clone(),
        template_version: t.version,
        schedule_id: schedule_id.map(str::to_string),
        params_enc,
    };
    state.store.insert_template_jobs(&jobs, &origin).await?;
    futures::future::join_all(jobs.iter().map(|j| crate::background::push_job(state, j))).await;
    tracing::info!(template_id = %t.id, version = t.version, jobs = jobs.len(), "template run");
    Ok((jobs, batch_id))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    /// A label (e.g. the CI pipeline); default `trigger`.
    pub name: Option<String>,
}

/// A new trigger: `token` is shown only in this reply.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TriggerCreated {
    pub id: String,
    pub name: String,
    /// Call `POST /api/v1/hooks/{token}`; stored only as a hash.
    pub token: String,
}

/// The template's trigger tokens (never the tokens themselves).
#[utoipa::path(get, path = "/templates/{id}/triggers", tag = "templates", params(("id" = String, Path)), responses((status = 200, body = Vec<TriggerRow>), (status = 404, body = crate::openapi::ErrorBody)))]
async fn list_triggers(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<TriggerRow>>> {
    let t = find(&state, &id).await?;
    Ok(Json(state.store.list_triggers(&t.id).await?))
}

/// Create an incoming-trigger token for the template.
#[utoipa::path(post, path = "/templates/{id}/triggers", tag = "templates", params(("id" = String, Path)), request_body = TriggerBody, responses((status = 201, body = TriggerCreated), (status = 404, body = crate::openapi::ErrorBody)))]
async fn create_trigger(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let b: TriggerBody = if body.is_empty() {
        TriggerBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid("body", e.to_string()))?
    };
    let t = find(&state, &id).await?;
    let name = b.name.unwrap_or_else(|| "trigger".into());
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(ApiError::invalid(
            "name",
            format!("a name has 1 to {MAX_NAME} characters"),
        ));
    }
    let token = format!(
        "rmh_{}",
        crate::auth::generate_token().trim_start_matches("rmr_")
    );
    let row = state
        .store
        .insert_trigger(&t.id, &name, &crate::auth::hash_token(&token))
        .await?;
    crate::audit(
        &state,
        &caller,
        "trigger.create",
        "template",
        Some(&t.id),
        Some(&format!("trigger {}", row.id)),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(TriggerCreated {
            id: row.id,
            name,
            token,
        }),
    )
        .into_response())
}

/// Revoke a trigger token: calls with it are refused from now on.
#[utoipa::path(delete, path = "/templates/{id}/triggers/{trigger_id}", tag = "templates", params(("id" = String, Path), ("trigger_id" = String, Path)), responses((status = 204), (status = 404, body = crate::openapi::ErrorBody)))]
async fn revoke_trigger(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, trigger_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let t = find(&state, &id).await?;
    if !state.store.revoke_trigger(&t.id, &trigger_id).await? {
        return Err(ApiError::not_found("trigger", &trigger_id));
    }
    crate::audit(
        &state,
        &caller,
        "trigger.revoke",
        "template",
        Some(&t.id),
        Some(&format!("trigger {trigger_id}")),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of an incoming trigger call.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HookBody {
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: BTreeMap<String, Value>,
}

/// Run a template by its trigger token (no bearer token: the path's token is the credential).
/// Rate limited per trigger (`REMORA_RATE_LIMIT`); every call is audited.
#[utoipa::path(post, path = "/hooks/{token}", tag = "templates", security(()), params(("token" = String, Path)), request_body = HookBody, responses((status = 201, body = Created), (status = 401, body = crate::openapi::ErrorBody), (status = 429, body = crate::openapi::ErrorBody)))]
async fn hook(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let Some(tr) = state
        .store
        .use_trigger(&crate::auth::hash_token(&token))
        .await?
    else {
        let _ = state
            .store
            .audit(
                None,
                "trigger.refused",
                "trigger",
                None,
                Some("unknown or revoked token"),
            )
            .await;
        return Err(ApiError::unauthorized(
            "the trigger token is invalid or was revoked",
        ));
    };
    if let Some(l) = state.limiter.as_ref() {
        if l.check_key(&format!("hook:{}", tr.id)).is_err() {
            let _ = state
                .store
                .audit(
                    None,
                    "trigger.rate_limited",
                    "template",
                    Some(&tr.template_id),
                    Some(&format!("trigger {}", tr.id)),
                )
                .await;
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many calls for this trigger; retry in 1 s",
            )
            .into_response();
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(1),
            );
            return Ok(resp);
        }
    }
    let b: HookBody = if body.is_empty() {
        HookBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid("body", e.to_string()))?
    };
    let t = find(&state, &tr.template_id).await?;
    let result = run_template(&state, &t, &b.params, None, None).await;
    let detail = match &result {
        Ok((jobs, _)) => format!("trigger {}: {} job(s)", tr.id, jobs.len()),
        Err(e) => format!("trigger {}: refused: {}", tr.id, e.message()),
    };
    let _ = state
        .store
        .audit(None, "trigger.call", "template", Some(&t.id), Some(&detail))
        .await;
    let (jobs, batch_id) = result?;
    Ok(created(jobs, batch_id))
}
