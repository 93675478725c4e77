//! Worker metrics in Prometheus text format, served on the optional
//! `REMORA_WORKER_METRICS_ADDR` (`GET /metrics`): jobs by final status, SSH
//! connect latency and failures, open connections and channels, jobs that
//! found a warm connection or opened one, bytes streamed, retries, the queue
//! the worker is on and its failovers.

use crate::Ctx;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub struct Metrics {
    registry: Registry,
    /// Jobs this worker ended, by final status.
    pub jobs_finished: IntCounterVec,
    pub jobs_running: IntGauge,
    /// Connection-level failures sent back to the queue for another attempt.
    pub retries: IntCounter,
    /// Failed writes at job end (last output, final status) tried again.
    pub store_retries: IntCounter,
    /// TCP connect + SSH handshake + authentication of new pooled connections.
    pub connect_seconds: Histogram,
    pub connect_failures: IntCounterVec,
    pub connections: IntGauge,
    pub channels: IntGauge,
    /// Channel leases by whether the job reused a pooled connection or opened one.
    pub ssh_leases: IntCounterVec,
    /// Output bytes received from hosts (before the per-job cap), by stream.
    pub output_bytes: IntCounterVec,
    /// Output bytes dropped because a job hit the cap.
    pub output_dropped_bytes: IntCounter,
    /// Deliveries of jobs already running or ended, acknowledged without running.
    pub dropped_not_queued: IntCounter,
    /// 1 for the queue address the worker is on, 0 for the others of its list.
    pub queue_active: IntGaugeVec,
    /// Moves of the worker's queue connection to another address of its list.
    pub queue_failovers: IntCounter,
    /// Jobs whose connection target came from the worker's cache (nothing read or decrypted).
    pub target_cache_hits: IntCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("remora_worker".into()), None)
            .expect("static registry prefix");
        let jobs_finished = IntCounterVec::new(
            Opts::new(
                "jobs_finished_total",
                "Jobs ended by this worker, by final status",
            ),
            &["status"],
        )
        .expect("static metric");
        let jobs_running =
            IntGauge::new("jobs_running", "Jobs running on this worker").expect("static metric");
        let retries = IntCounter::new(
            "job_retries_total",
            "Jobs requeued after a connection-level failure",
        )
        .expect("static metric");
        let store_retries = IntCounter::new(
            "store_retries_total",
            "Failed database writes at job end (last output, final status) tried again",
        )
        .expect("static metric");
        let connect_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "ssh_connect_seconds",
                "Time to open a new SSH connection (TCP, handshake, authentication)",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )
        .expect("static metric");
        let connect_failures = IntCounterVec::new(
            Opts::new(
                "ssh_connect_failures_total",
                "Failed SSH connects by error code",
            ),
            &["code"],
        )
        .expect("static metric");
        let connections =
            IntGauge::new("ssh_connections", "Open pooled SSH connections").expect("static metric");
        let channels =
            IntGauge::new("ssh_channels", "SSH channels in use by jobs").expect("static metric");
        let ssh_leases = IntCounterVec::new(
            Opts::new(
                "ssh_leases_total",
                "Jobs that ran on a pooled SSH connection (connection=\"reused\") or opened one (\"new\")",
            ),
            &["connection"],
        )
        .expect("static metric");
        let output_bytes = IntCounterVec::new(
            Opts::new(
                "output_bytes_total",
                "Output bytes received from hosts, by stream",
            ),
            &["stream"],
        )
        .expect("static metric");
        let output_dropped_bytes = IntCounter::new(
            "output_dropped_bytes_total",
            "Output bytes dropped beyond the per-job cap",
        )
        .expect("static metric");
        let dropped_not_queued = IntCounter::new(
            "deliveries_not_queued_total",
            "Deliveries of jobs already running or ended, acknowledged without running",
        )
        .expect("static metric");
        let queue_active = IntGaugeVec::new(
            Opts::new(
                "queue_active",
                "1 for the queue address this worker is connected to, 0 for the other ones listed",
            ),
            &["addr"],
        )
        .expect("static metric");
        let queue_failovers = IntCounter::new(
            "queue_failovers_total",
            "Moves of this worker's queue connection to another address of REMORA_QUEUE_ADDR",
        )
        .expect("static metric");
        let target_cache_hits = IntCounter::new(
            "target_cache_hits_total",
            "Jobs whose server, credentials and trusted CAs came from the worker's cache (unchanged since it read them)",
        )
        .expect("static metric");
        let all: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(target_cache_hits.clone()),
            Box::new(jobs_finished.clone()),
            Box::new(jobs_running.clone()),
            Box::new(retries.clone()),
            Box::new(store_retries.clone()),
            Box::new(connect_seconds.clone()),
            Box::new(connect_failures.clone()),
            Box::new(connections.clone()),
            Box::new(channels.clone()),
            Box::new(ssh_leases.clone()),
            Box::new(output_bytes.clone()),
            Box::new(output_dropped_bytes.clone()),
            Box::new(dropped_not_queued.clone()),
            Box::new(queue_active.clone()),
            Box::new(queue_failovers.clone()),
        ];
        for c in all {
            registry.register(c).expect("unique metric names");
        }
        Metrics {
            registry,
            jobs_finished,
            jobs_running,
            retries,
            store_retries,
            connect_seconds,
            connect_failures,
            connections,
            channels,
            ssh_leases,
            output_bytes,
            output_dropped_bytes,
            dropped_not_queued,
            queue_active,
            queue_failovers,
            target_cache_hits,
        }
    }

    /// Copies the queue client's failover state into the gauges (at each scrape).
    pub fn observe_queue(&self, queue: &remora_netqueue::Client) {
        let active = queue.active_addr().filter(|_| queue.is_connected());
        for a in queue.addrs() {
            self.queue_active
                .with_label_values(&[a.as_str()])
                .set(i64::from(active == Some(a.as_str())));
        }
        let seen = self.queue_failovers.get();
        self.queue_failovers
            .inc_by(queue.failovers().saturating_sub(seen));
    }

    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Serve `GET /metrics` on `listener` until `shutdown`.
pub async fn serve(listener: tokio::net::TcpListener, ctx: Arc<Ctx>, shutdown: CancellationToken) {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let ctx = ctx.clone();
            async move {
                let (conns, chans) = ctx.pool.stats().await;
                ctx.metrics.connections.set(conns as i64);
                ctx.metrics.channels.set(chans as i64);
                ctx.metrics.observe_queue(&ctx.queue);
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    ctx.metrics.encode(),
                )
            }
        }),
    );
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::warn!(error = %e, "metrics endpoint failed");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_prefixed_names() {
        let m = super::Metrics::new();
        m.jobs_finished.with_label_values(&["completed"]).inc();
        m.connect_seconds.observe(0.02);
        let text = m.encode();
        assert!(
            text.contains("remora_worker_jobs_finished_total{status=\"completed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("remora_worker_ssh_connect_seconds_count 1"),
            "{text}"
        );
    }
}
