//! Worker registry: who is running jobs and whether they are alive.

use crate::error::ApiResult;
use crate::openapi::{WorkerInfo, WorkerList};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Registered workers, newest first, with `up` from their heartbeats.
#[utoipa::path(get, path = "/workers", tag = "system", responses((status = 200, body = WorkerList), (status = 401, body = crate::openapi::ErrorBody)))]
async fn list(State(state): State<AppState>) -> ApiResult<Json<WorkerList>> {
    let cutoff = remora_domain::time::now_ms() - state.cfg.worker_down_after.as_millis() as i64;
    let workers = state
        .store
        .list_workers()
        .await?
        .into_iter()
        .map(|w| WorkerInfo { up: w.status == "up" && w.last_heartbeat_at >= cutoff, worker: w })
        .collect();
    Ok(Json(WorkerList { workers }))
}
