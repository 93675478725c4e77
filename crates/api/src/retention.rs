//! `/settings/retention`: read and set the retention policy the maintenance task enforces (admin only to set), and run a pass now (admin or operator).

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use remora_store::retention::RetentionPolicy;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_policy, put_policy))
        .routes(routes!(run_now))
}

/// The retention policy (the default keeps everything).
#[utoipa::path(get, operation_id = "get_retention", path = "/settings/retention", tag = "system", responses((status = 200, body = RetentionPolicy), (status = 401, body = crate::openapi::ErrorBody)))]
async fn get_policy(State(state): State<AppState>) -> ApiResult<Json<RetentionPolicy>> {
    Ok(Json(state.store.retention_policy().await?))
}

/// Replace the retention policy; the next maintenance pass applies it.
#[utoipa::path(put, operation_id = "set_retention", path = "/settings/retention", tag = "system", request_body = RetentionPolicy, responses((status = 200, body = RetentionPolicy), (status = 422, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn put_policy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(p): JsonBody<RetentionPolicy>,
) -> ApiResult<Json<RetentionPolicy>> {
    if caller.role != "admin" {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only admin tokens change the retention policy",
        ));
    }
    p.validate().map_err(|(f, m)| ApiError::invalid(f, m))?;
    if p.export_before_delete && state.cfg.maintenance.export_dir.is_none() {
        return Err(ApiError::invalid(
            "export_before_delete",
            "export_before_delete needs REMORA_RETENTION_EXPORT_DIR set on the API",
        ));
    }
    state.store.set_retention_policy(&p).await?;
    let detail = serde_json::to_string(&p).unwrap_or_default();
    crate::audit(
        &state,
        &caller,
        "retention.update",
        "settings",
        Some("retention"),
        Some(&detail),
    )
    .await;
    Ok(Json(p))
}

/// Only one pass started through the API at a time (a second request waits for the first).
static RUN_NOW: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Run one maintenance pass now (compression, then the purge, with the
/// configured batch size and pause) and report what it did. Admin or operator;
/// audited as `retention.run`. The reply comes when the pass ends.
#[utoipa::path(post, operation_id = "run_retention", path = "/settings/retention/run", tag = "system", responses((status = 200, body = remora_store::maintenance::PassReport), (status = 422, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn run_now(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<remora_store::maintenance::PassReport>> {
    if caller.role != "admin" && caller.role != "operator" {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only admin and operator tokens run a retention pass",
        ));
    }
    let _one = RUN_NOW.lock().await;
    let started = std::time::Instant::now();
    let r = remora_store::maintenance::run_once(
        &state.store,
        &state.cfg.maintenance,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await;
    let report = match r {
        Ok(rep) => rep,
        Err(remora_store::maintenance::MaintenanceError::Store(e)) => return Err(e.into()),
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "retention_failed",
                e.to_string(),
            ))
        }
    };
    let detail = format!(
        "{} (took {} ms)",
        serde_json::to_string(&report).unwrap_or_default(),
        started.elapsed().as_millis()
    );
    crate::audit(
        &state,
        &caller,
        "retention.run",
        "settings",
        Some("retention"),
        Some(&detail),
    )
    .await;
    Ok(Json(report))
}
