//! `/system/info` and `/system/enhanced`: counts, success rate, throughput
//! and queue depth — well defined on an empty database (no NaN).

use crate::error::ApiResult;
use crate::openapi::{
    JobCounts, MinutePoint, ServerCounts, SystemEnhanced, SystemInfo, WorkerCounts,
};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use remora_domain::JobStatus;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(info))
        .routes(routes!(enhanced))
}

pub async fn info_value(state: &AppState) -> ApiResult<SystemInfo> {
    let counts = state.store.count_jobs_by_status().await?;
    let mut by_status = std::collections::BTreeMap::new();
    for st in JobStatus::ALL {
        by_status.insert(st.as_str().to_string(), 0);
    }
    let mut total = 0;
    for (st, n) in &counts {
        by_status.insert(st.as_str().to_string(), *n);
        total += n;
    }
    let get = |s: JobStatus| {
        counts
            .iter()
            .find(|(x, _)| *x == s)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    let finished = get(JobStatus::Completed) + get(JobStatus::Failed) + get(JobStatus::TimedOut);
    // Canceled jobs say nothing about success; without finished jobs the rate is null, not NaN.
    let success_rate = (finished > 0).then(|| get(JobStatus::Completed) as f64 / finished as f64);
    let servers = state.store.list_servers().await?;
    let cutoff = remora_domain::time::now_ms() - state.cfg.worker_down_after.as_millis() as i64;
    let workers = state.store.list_workers().await?;
    let up = workers
        .iter()
        .filter(|w| w.status == "up" && w.last_heartbeat_at >= cutoff)
        .count();
    let queue_depth = match state.queue.stats().await {
        Ok(st) => Some(
            st.queues
                .get(remora_domain::JOBS_QUEUE)
                .map(|q| q.ready + q.delayed)
                .unwrap_or(0),
        ),
        Err(_) => None,
    };
    Ok(SystemInfo {
        max_batch_hosts: state.cfg.max_batch_hosts,
        version: remora_domain::VERSION.to_string(),
        jobs: JobCounts { total, by_status },
        success_rate,
        servers: ServerCounts {
            total: servers.len(),
            active: servers.iter().filter(|s| s.is_active).count(),
            reachable: servers
                .iter()
                .filter(|s| s.last_status.as_deref() == Some("reachable"))
                .count(),
        },
        workers: WorkerCounts {
            up,
            down: workers.len() - up,
        },
        queue_depth,
    })
}

/// Counts by status, success rate, servers, workers and queue depth.
#[utoipa::path(get, path = "/system/info", tag = "system", responses((status = 200, body = SystemInfo), (status = 401, body = crate::openapi::ErrorBody)))]
async fn info(State(state): State<AppState>) -> ApiResult<Json<SystemInfo>> {
    Ok(Json(info_value(&state).await?))
}

/// `info` plus jobs finished per minute over the last hour.
#[utoipa::path(get, path = "/system/enhanced", tag = "system", responses((status = 200, body = SystemEnhanced), (status = 401, body = crate::openapi::ErrorBody)))]
async fn enhanced(State(state): State<AppState>) -> ApiResult<Json<SystemEnhanced>> {
    let info = info_value(&state).await?;
    let now = remora_domain::time::now_ms();
    let since = now / 60_000 * 60_000 - 59 * 60_000;
    let rows = state.store.throughput(since).await?;
    let throughput: Vec<MinutePoint> = (0..60)
        .map(|i| {
            let m = since + i * 60_000;
            let r = rows.iter().find(|r| r.minute == m);
            MinutePoint {
                minute: remora_domain::time::ms_to_rfc3339(m),
                completed: r.map(|r| r.completed).unwrap_or(0),
                failed: r.map(|r| r.failed).unwrap_or(0),
                canceled: r.map(|r| r.canceled).unwrap_or(0),
                total: r.map(|r| r.total).unwrap_or(0),
            }
        })
        .collect();
    let jobs_last_hour: i64 = rows.iter().map(|r| r.total).sum();
    Ok(Json(SystemEnhanced {
        info,
        throughput,
        jobs_last_hour,
        jobs_per_minute: jobs_last_hour as f64 / 60.0,
        output_compression: state.store.compression_totals().await?,
    }))
}
