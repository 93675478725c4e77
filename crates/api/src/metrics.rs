//! Prometheus metrics at `/metrics`: requests by route and status, request
//! latency, jobs by status, queue depth, the queue address in use and its failovers, SSE clients.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::sync::Arc;
use std::time::Instant;

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    pub sse_clients: IntGauge,
    jobs: IntGaugeVec,
    queue_depth: IntGauge,
    queue_active: IntGaugeVec,
    queue_failovers: IntCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry =
            Registry::new_custom(Some("remora".into()), None).expect("static registry prefix");
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("static metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["route"],
        )
        .expect("static metric");
        let sse_clients =
            IntGauge::new("sse_clients", "Open server-sent-event streams").expect("static metric");
        let jobs = IntGaugeVec::new(
            Opts::new("jobs", "Jobs in the database by status"),
            &["status"],
        )
        .expect("static metric");
        let queue_depth = IntGauge::new(
            "queue_depth",
            "Jobs waiting in the queue (ready + delayed); -1 when unreachable",
        )
        .expect("static metric");
        let queue_active = IntGaugeVec::new(
            Opts::new(
                "queue_active",
                "1 for the queue address the API is connected to, 0 for the other ones listed",
            ),
            &["addr"],
        )
        .expect("static metric");
        let queue_failovers = IntCounter::new(
            "queue_failovers_total",
            "Moves of the API's queue connection to another address of REMORA_QUEUE_ADDR",
        )
        .expect("static metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(queue_active.clone()),
            Box::new(queue_failovers.clone()),
            Box::new(duration.clone()),
            Box::new(sse_clients.clone()),
            Box::new(jobs.clone()),
            Box::new(queue_depth.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Metrics {
            registry,
            requests,
            duration,
            sse_clients,
            jobs,
            queue_depth,
            queue_active,
            queue_failovers,
        }
    }
}

/// Counts an open SSE stream for as long as it lives.
pub struct SseGuard(Arc<Metrics>);
impl SseGuard {
    pub fn new(m: Arc<Metrics>) -> SseGuard {
        m.sse_clients.inc();
        SseGuard(m)
    }
}
impl Drop for SseGuard {
    fn drop(&mut self) {
        self.0.sse_clients.dec();
    }
}

/// The `method` label: the standard methods by name, anything else (`curl -X M1`) as
/// `other`, so a client cannot create new series.
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // The matched route template, never the raw path (bounded label values).
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = method_label(req.method());
    let started = Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .duration
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    state
        .metrics
        .requests
        .with_label_values(&[&route, method, resp.status().as_str()])
        .inc();
    resp
}

/// Prometheus text exposition (no token needed; bind the API to a trusted network or filter
/// `/metrics` at the proxy).
#[utoipa::path(get, path = "/metrics", tag = "system", security(()), responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn render(State(state): State<AppState>) -> Response {
    if let Ok(counts) = state.store.count_jobs_by_status().await {
        for st in remora_domain::JobStatus::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| *s == st)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            state.metrics.jobs.with_label_values(&[st.as_str()]).set(n);
        }
    }
    let depth =
        match tokio::time::timeout(std::time::Duration::from_secs(2), state.queue.stats()).await {
            Ok(Ok(st)) => st
                .queues
                .get(remora_domain::JOBS_QUEUE)
                .map(|q| (q.ready + q.delayed) as i64)
                .unwrap_or(0),
            _ => -1,
        };
    state.metrics.queue_depth.set(depth);
    let active = state
        .queue
        .active_addr()
        .filter(|_| state.queue.is_connected());
    for a in state.queue.addrs() {
        state
            .metrics
            .queue_active
            .with_label_values(&[a.as_str()])
            .set(i64::from(active == Some(a.as_str())));
    }
    let seen = state.metrics.queue_failovers.get();
    state
        .metrics
        .queue_failovers
        .inc_by(state.queue.failovers().saturating_sub(seen));
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&state.metrics.registry.gather(), &mut buf);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        buf,
    )
        .into_response()
}
