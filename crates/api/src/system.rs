//! `/system/info` and `/system/enhanced`: counts, success rate, throughput
//! and queue depth — well defined on an empty database (no NaN).

use crate::error::ApiResult;
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use remora_domain::JobStatus;
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new().route("/system/info", get(info)).route("/system/enhanced", get(enhanced))
}

pub async fn info_value(state: &AppState) -> ApiResult<Value> {
    let counts = state.store.count_jobs_by_status().await?;
    let mut by_status = serde_json::Map::new();
    for st in JobStatus::ALL {
        by_status.insert(st.as_str().into(), json!(0));
    }
    let mut total = 0;
    for (st, n) in &counts {
        by_status.insert(st.as_str().into(), json!(n));
        total += n;
    }
    let get = |s: JobStatus| counts.iter().find(|(x, _)| *x == s).map(|(_, n)| *n).unwrap_or(0);
    let finished = get(JobStatus::Completed) + get(JobStatus::Failed) + get(JobStatus::TimedOut);
    // Canceled jobs say nothing about success; without finished jobs the rate is null, not NaN.
    let success_rate = if finished > 0 { json!(get(JobStatus::Completed) as f64 / finished as f64) } else { Value::Null };
    let servers = state.store.list_servers().await?;
    let cutoff = remora_domain::time::now_ms() - state.cfg.worker_down_after.as_millis() as i64;
    let workers = state.store.list_workers().await?;
    let up = workers.iter().filter(|w| w.status == "up" && w.last_heartbeat_at >= cutoff).count();
    let queue_depth = match state.queue.stats().await {
        Ok(st) => json!(st.queues.get(remora_domain::JOBS_QUEUE).map(|q| q.ready + q.delayed).unwrap_or(0)),
        Err(_) => Value::Null,
    };
    Ok(json!({
        "version": remora_domain::VERSION,
        "jobs": { "total": total, "by_status": by_status },
        "success_rate": success_rate,
        "servers": { "total": servers.len(), "active": servers.iter().filter(|s| s.is_active).count(), "reachable": servers.iter().filter(|s| s.last_status.as_deref() == Some("reachable")).count() },
        "workers": { "up": up, "down": workers.len() - up },
        "queue_depth": queue_depth,
    }))
}

async fn info(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(info_value(&state).await?))
}

async fn enhanced(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let mut v = info_value(&state).await?;
    let now = remora_domain::time::now_ms();
    let this_minute = now / 60_000 * 60_000;
    let since = this_minute - 59 * 60_000;
    let rows = state.store.throughput(since).await?;
    let mut series = Vec::with_capacity(60);
    for i in 0..60 {
        let m = since + i * 60_000;
        let r = rows.iter().find(|r| r.minute == m);
        series.push(json!({
            "minute": remora_domain::time::ms_to_rfc3339(m),
            "completed": r.map(|r| r.completed).unwrap_or(0),
            "failed": r.map(|r| r.failed).unwrap_or(0),
            "total": r.map(|r| r.total).unwrap_or(0),
        }));
    }
    let last_hour: i64 = rows.iter().map(|r| r.total).sum();
    v["throughput"] = json!(series);
    v["jobs_last_hour"] = json!(last_hour);
    v["jobs_per_minute"] = json!(last_hour as f64 / 60.0);
    Ok(Json(v))
}
