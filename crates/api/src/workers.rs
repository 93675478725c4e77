//! Worker registry: who is running jobs and whether they are alive.

use crate::error::ApiResult;
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new().route("/workers", get(list))
}

async fn list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let cutoff = remora_domain::time::now_ms() - state.cfg.worker_down_after.as_millis() as i64;
    let workers: Vec<Value> = state
        .store
        .list_workers()
        .await?
        .into_iter()
        .map(|w| {
            let up = w.status == "up" && w.last_heartbeat_at >= cutoff;
            let mut v = serde_json::to_value(&w).unwrap_or_default();
            v["up"] = json!(up);
            v
        })
        .collect();
    Ok(Json(json!({ "workers": workers })))
}
