//! `/notifications`: webhook and email targets (CRUD; the signing secret is sealed and never returned), their delivery log and manual redelivery. Admin only for changes.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use remora_domain::JobStatus;
use remora_store::notifications::EVENTS;
use remora_store::{Delivery, NewTarget, Target, TargetKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Longest target name, characters.
pub const MAX_NAME: usize = 100;
/// Longest webhook URL, bytes.
pub const MAX_URL: usize = 2048;
/// Most email recipients per target.
pub const MAX_RECIPIENTS: usize = 20;
/// Longest signing secret, bytes.
pub const MAX_SECRET: usize = 256;
/// Most values per filter list.
pub const MAX_FILTER: usize = 50;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(deliveries))
        .routes(routes!(redeliver))
}

fn admin_only(c: &Caller) -> ApiResult<()> {
    if c.role != "admin" {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only admin tokens change notification targets",
        ));
    }
    Ok(())
}

/// Which events of a target's subscription it receives.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetFilter {
    /// Server tags; an event matches when its server has any of them. Empty: any.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Job statuses (`completed`, `failed`, `timed_out`, `canceled`). Empty: any.
    #[serde(default)]
    pub statuses: Vec<String>,
    /// Template names; matched once jobs record the template they ran. Empty: any.
    #[serde(default)]
    pub templates: Vec<String>,
}

/// A notification target to create or replace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetBody {
    pub name: Option<String>,
    /// `webhook` (default) or `email`; fixed once created.
    pub kind: Option<TargetKind>,
    /// Webhooks: the http(s) URL events are POSTed to.
    pub url: Option<String>,
    /// Email: the recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// Webhooks: `json` (default, the event payload) or `slack` (`{"text": …}` plus the payload under `remora`).
    pub format: Option<String>,
    /// Webhooks: the HMAC-SHA256 signing secret. On create, omitted means
    /// one is generated and returned once; on update, omitted keeps it.
    pub secret: Option<String>,
    /// Subscribed events (at least one).
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub filter: TargetFilter,
    /// Default true.
    pub enabled: Option<bool>,
}

/// A target as the API shows it: never with its secret, and the URL with its path hidden (webhook URLs often carry a token).
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetView {
    pub id: String,
    pub name: String,
    pub kind: TargetKind,
    /// Scheme, host and port of the URL; the path and query are shown as `/…`.
    pub url: Option<String>,
    pub to: Vec<String>,
    pub format: String,
    pub has_secret: bool,
    pub events: Vec<String>,
    pub filter: TargetFilter,
    pub enabled: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: String,
}

/// A created target; `secret` is present (once) when the server generated it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetCreated {
    #[serde(flatten)]
    pub target: TargetView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TargetList {
    pub targets: Vec<TargetView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<Delivery>,
}

/// `https://hooks.example.com/…` for `https://hooks.example.com/T000/B000/XXXX?x=1`.
pub fn redact_url(url: &str) -> String {
    match remora_notify::Url::parse(url) {
        Ok(u) => {
            let mut s = format!("{}://{}", u.scheme(), u.host_str().unwrap_or(""));
            if let Some(p) = u.port() {
                s.push_str(&format!(":{p}"));
            }
            if u.path() != "/" || u.query().is_some() {
                s.push_str("/…");
            }
            s
        }
        Err(_) => "…".into(),
    }
}

pub fn view(t: Target) -> TargetView {
    TargetView {
        url: t.url.as_deref().map(redact_url),
        id: t.id,
        name: t.name,
        kind: t.kind,
        to: t.email_to,
        format: t.format,
        has_secret: t.has_secret,
        events: t.events,
        filter: TargetFilter {
            tags: t.filter_tags,
            statuses: t.filter_statuses,
            templates: t.filter_templates,
        },
        enabled: t.enabled,
        created_at: remora_domain::time::ms_to_rfc3339(t.created_at),
        updated_at: remora_domain::time::ms_to_rfc3339(t.updated_at),
    }
}

fn clean_list(field: &str, v: &[String]) -> ApiResult<Vec<String>> {
    if v.len() > MAX_FILTER {
        return Err(ApiError::invalid(
            field,
            format!("{field} takes at most {MAX_FILTER} values"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for s in v {
        let s = s.trim();
        if s.is_empty() || s.len() > 100 {
            return Err(ApiError::invalid(
                field,
                format!("{field} values must be 1 to 100 characters"),
            ));
        }
        if !out.iter().any(|x| x == s) {
            out.push(s.to_string());
        }
    }
    Ok(out)
}

/// Validate a body into what the store writes. `kind` is the existing
/// target's on update. Returns the target and the plain secret (if any).
fn validate(
    state: &AppState,
    b: &TargetBody,
    existing_kind: Option<TargetKind>,
) -> ApiResult<(NewTarget, Option<String>)> {
    let name = b
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::missing("name"))?;
    if name.chars().count() > MAX_NAME {
        return Err(ApiError::invalid(
            "name",
            format!("name must be at most {MAX_NAME} characters"),
        ));
    }
    let kind = match (existing_kind, b.kind) {
        (Some(k), Some(n)) if k != n => {
            return Err(ApiError::invalid(
                "kind",
                "a target's kind cannot change; create a new target",
            ))
        }
        (Some(k), _) => k,
        (None, k) => k.unwrap_or(TargetKind::Webhook),
    };
    let events = b
        .events
        .as_ref()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| ApiError::missing("events"))?;
    let events = clean_list("events", events)?;
    if let Some(bad) = events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
        return Err(ApiError::invalid(
            "events",
            format!("unknown event `{bad}`; events are {}", EVENTS.join(", ")),
        ));
    }
    let statuses = clean_list("filter.statuses", &b.filter.statuses)?;
    if let Some(bad) = statuses
        .iter()
        .find(|s| !s.parse::<JobStatus>().is_ok_and(|s| s.is_final()))
    {
        return Err(ApiError::invalid(
            "filter.statuses",
            format!("`{bad}` is not a final status (completed, failed, timed_out, canceled)"),
        ));
    }
    let format = b.format.clone().unwrap_or_else(|| "json".into());
    if format != "json" && format != "slack" {
        return Err(ApiError::invalid("format", "format must be json or slack"));
    }
    let mut t = NewTarget {
        name: name.to_string(),
        kind: Some(kind),
        format,
        events,
        filter_tags: clean_list("filter.tags", &b.filter.tags)?,
        filter_statuses: statuses,
        filter_templates: clean_list("filter.templates", &b.filter.templates)?,
        enabled: b.enabled.unwrap_or(true),
        ..Default::default()
    };
    let mut secret = None;
    match kind {
        TargetKind::Webhook => {
            let url = b
                .url
                .as_deref()
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .ok_or_else(|| ApiError::missing("url"))?;
            if url.len() > MAX_URL {
                return Err(ApiError::invalid(
                    "url",
                    format!("url must be at most {MAX_URL} bytes"),
                ));
            }
            let parsed = remora_notify::Url::parse(url).map_err(|_| {
                ApiError::invalid("url", "url must be an absolute http:// or https:// URL")
            })?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(ApiError::invalid(
                    "url",
                    "url must be an absolute http:// or https:// URL",
                ));
            }
            if !b.to.is_empty() {
                return Err(ApiError::invalid("to", "`to` is for email targets"));
            }
            t.url = Some(url.to_string());
            if let Some(s) = &b.secret {
                if s.is_empty() || s.len() > MAX_SECRET {
                    return Err(ApiError::invalid(
                        "secret",
                        format!("secret must be 1 to {MAX_SECRET} bytes"),
                    ));
                }
                secret = Some(s.clone());
            }
        }
        TargetKind::Email => {
            if b.url.is_some() || b.secret.is_some() {
                return Err(ApiError::invalid(
                    if b.url.is_some() { "url" } else { "secret" },
                    "email targets take `to`, not `url` or `secret`",
                ));
            }
            if b.to.is_empty() {
                return Err(ApiError::missing("to"));
            }
            if b.to.len() > MAX_RECIPIENTS {
                return Err(ApiError::invalid(
                    "to",
                    format!("at most {MAX_RECIPIENTS} recipients"),
                ));
            }
            for a in &b.to {
                if !remora_notify::send::valid_address(a) {
                    return Err(ApiError::invalid(
                        "to",
                        format!("`{a}` is not an email address"),
                    ));
                }
            }
            if state.cfg.notify.smtp_url.is_none() {
                tracing::warn!("an email target was saved but REMORA_SMTP_URL is not set: its deliveries fail until it is");
            }
            t.email_to = b.to.iter().map(|a| a.trim().to_string()).collect();
        }
    }
    t.secret_enc = secret.as_ref().map(|s| state.vault.seal(s.as_bytes()));
    Ok((t, secret))
}

/// Every notification target.
#[utoipa::path(get, operation_id = "list_notifications", path = "/notifications", tag = "notifications", responses((status = 200, body = TargetList), (status = 401, body = crate::openapi::ErrorBody)))]
async fn list(State(state): State<AppState>) -> ApiResult<Json<TargetList>> {
    let targets = state.store.list_targets().await?;
    Ok(Json(TargetList {
        targets: targets.into_iter().map(view).collect(),
    }))
}

/// Create a target. A webhook without `secret` gets a generated one, returned in this response only.
#[utoipa::path(post, operation_id = "create_notification", path = "/notifications", tag = "notifications", request_body = TargetBody, responses((status = 201, body = TargetCreated), (status = 409, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(b): JsonBody<TargetBody>,
) -> ApiResult<(StatusCode, Json<TargetCreated>)> {
    admin_only(&caller)?;
    let (mut t, secret) = validate(&state, &b, None)?;
    let mut generated = None;
    if t.kind == Some(TargetKind::Webhook) && secret.is_none() {
        let s = format!("whsec_{}", crate::auth::generate_token());
        t.secret_enc = Some(state.vault.seal(s.as_bytes()));
        generated = Some(s);
    }
    let target = state.store.insert_target(&t).await.map_err(|e| match e {
        remora_store::StoreError::Conflict { .. } => {
            ApiError::conflict("name", "a notification target with this name exists")
        }
        e => e.into(),
    })?;
    crate::audit(
        &state,
        &caller,
        "notification.create",
        "notification",
        Some(&target.id),
        Some(&target.name),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(TargetCreated {
            target: view(target),
            secret: generated,
        }),
    ))
}

/// One target.
#[utoipa::path(get, operation_id = "get_notification", path = "/notifications/{id}", tag = "notifications", params(("id" = String, Path)), responses((status = 200, body = TargetView), (status = 404, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<TargetView>> {
    let t = state
        .store
        .get_target(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("notification target", &id))?;
    Ok(Json(view(t)))
}

/// Replace a target's settings (its kind stays; an omitted `secret` keeps the current one).
#[utoipa::path(put, operation_id = "update_notification", path = "/notifications/{id}", tag = "notifications", params(("id" = String, Path)), request_body = TargetBody, responses((status = 200, body = TargetView), (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<TargetBody>,
) -> ApiResult<Json<TargetView>> {
    admin_only(&caller)?;
    let old = state
        .store
        .get_target(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("notification target", &id))?;
    let (t, _) = validate(&state, &b, Some(old.kind))?;
    let t = state
        .store
        .update_target(&id, &t)
        .await
        .map_err(|e| match e {
            remora_store::StoreError::Conflict { .. } => {
                ApiError::conflict("name", "a notification target with this name exists")
            }
            e => e.into(),
        })?
        .ok_or_else(|| ApiError::not_found("notification target", &id))?;
    crate::audit(
        &state,
        &caller,
        "notification.update",
        "notification",
        Some(&id),
        Some(&t.name),
    )
    .await;
    Ok(Json(view(t)))
}

/// Delete a target with its delivery log.
#[utoipa::path(delete, operation_id = "delete_notification", path = "/notifications/{id}", tag = "notifications", params(("id" = String, Path)), responses((status = 204, description = "Deleted"), (status = 404, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    admin_only(&caller)?;
    if !state.store.delete_target(&id).await? {
        return Err(ApiError::not_found("notification target", &id));
    }
    crate::audit(
        &state,
        &caller,
        "notification.delete",
        "notification",
        Some(&id),
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Newest first, at most this many (1..=1000, default 100).
    pub limit: Option<i64>,
}

/// The delivery log: each event sent to this target, newest first, with every attempt (time, status code, latency).
#[utoipa::path(get, path = "/notifications/{id}/deliveries", tag = "notifications", params(("id" = String, Path), DeliveriesQuery), responses((status = 200, body = DeliveryList), (status = 404, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn deliveries(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<DeliveriesQuery>,
) -> ApiResult<Json<DeliveryList>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "limit must be between 1 and 1000",
        ));
    }
    if state.store.get_target(&id).await?.is_none() {
        return Err(ApiError::not_found("notification target", &id));
    }
    Ok(Json(DeliveryList {
        deliveries: state.store.list_deliveries(&id, limit).await?,
    }))
}

/// Send a delivery again now, with a fresh retry window (refused while it is being sent).
#[utoipa::path(post, path = "/notifications/{id}/deliveries/{delivery_id}/redeliver", tag = "notifications", params(("id" = String, Path), ("delivery_id" = String, Path)), responses((status = 202, description = "Queued for sending"), (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn redeliver(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, delivery_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    admin_only(&caller)?;
    let window = state.cfg.notify.retry_window.as_millis() as i64;
    if !state.store.redeliver(&id, &delivery_id, window).await? {
        let exists = state
            .store
            .list_deliveries(&id, 1000)
            .await?
            .iter()
            .any(|d| d.id == delivery_id);
        return Err(if exists {
            ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "the delivery is being sent right now",
            )
        } else {
            ApiError::not_found("delivery", &delivery_id)
        });
    }
    crate::audit(
        &state,
        &caller,
        "notification.redeliver",
        "notification",
        Some(&id),
        Some(&delivery_id),
    )
    .await;
    Ok(StatusCode::ACCEPTED)
}
