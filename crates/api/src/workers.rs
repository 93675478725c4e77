//! Worker registry: who is running jobs and whether they are alive.

use crate::error::ApiResult;
use crate::openapi::{WorkerInfo, WorkerList};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(drain))
}

/// Ask a worker to drain: it stops taking jobs, lets running ones finish up
/// to its drain timeout, cancels the rest properly and exits (audited).
#[utoipa::path(post, path = "/workers/{id}/drain", tag = "system", params(("id" = String, Path, description = "Worker id")), responses((status = 202, body = WorkerInfo), (status = 404, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn drain(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<crate::auth::Caller>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<(axum::http::StatusCode, Json<WorkerInfo>)> {
    let w = state
        .store
        .list_workers()
        .await?
        .into_iter()
        .find(|w| w.id == id)
        .ok_or_else(|| crate::error::ApiError::not_found("worker", &id))?;
    let m = remora_domain::events::drain_message(&id);
    state
        .queue
        .publish(&m.topic, m.payload.into())
        .await
        .map_err(|e| {
            crate::error::ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "queue_unavailable",
                format!("could not reach the queue to tell the worker: {e}"),
            )
        })?;
    crate::audit(&state, &caller, "worker.drain", "worker", Some(&id), None).await;
    let cutoff = remora_domain::time::now_ms() - state.cfg.worker_down_after.as_millis() as i64;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(WorkerInfo {
            up: w.status == "up" && w.last_heartbeat_at >= cutoff,
            worker: w,
        }),
    ))
}

/// Registered workers, newest first, with `up` from their heartbeats.
#[utoipa::path(get, operation_id = "list_workers", path = "/workers", tag = "system", responses((status = 200, body = WorkerList), (status = 401, body = crate::openapi::ErrorBody)))]
async fn list(State(state): State<AppState>) -> ApiResult<Json<WorkerList>> {
    let cutoff = remora_domain::time::now_ms() - state.cfg.worker_down_after.as_millis() as i64;
    let workers = state
        .store
        .list_workers()
        .await?
        .into_iter()
        .map(|w| WorkerInfo {
            up: w.status == "up" && w.last_heartbeat_at >= cutoff,
            worker: w,
        })
        .collect();
    Ok(Json(WorkerList { workers }))
}
