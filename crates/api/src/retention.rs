//! `/settings/retention`: read and set the retention policy the maintenance task enforces (admin only to set).

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use remora_store::retention::RetentionPolicy;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_policy, put_policy))
}

/// The retention policy (the default keeps everything).
#[utoipa::path(get, path = "/settings/retention", tag = "system", responses((status = 200, body = RetentionPolicy), (status = 401, body = crate::openapi::ErrorBody)))]
async fn get_policy(State(state): State<AppState>) -> ApiResult<Json<RetentionPolicy>> {
    Ok(Json(state.store.retention_policy().await?))
}

/// Replace the retention policy; the next maintenance pass applies it.
#[utoipa::path(put, path = "/settings/retention", tag = "system", request_body = RetentionPolicy, responses((status = 200, body = RetentionPolicy), (status = 422, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
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
