//! Optional Prometheus endpoint (`--metrics-addr`): `GET /metrics` renders
//! the server's STATS — depth per queue and priority, leased, delayed,
//! dead-lettered, cumulative counters (rates come from Prometheus'
//! `rate()`), connections, log size and affinity hits and misses. It reads STATS over the queue's own
//! protocol, so it shows exactly what clients see.

use crate::client::Client;
use std::fmt::Write;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Prometheus text exposition of a STATS reply.
pub fn render(stats: &crate::Stats) -> String {
    let mut o = String::new();
    let gauge = |o: &mut String, name: &str, help: &str, kind: &str| {
        let _ = writeln!(
            o,
            "# HELP remora_queue_{name} {help}\n# TYPE remora_queue_{name} {kind}"
        );
    };
    type Field = (
        &'static str,
        &'static str,
        &'static str,
        fn(&crate::QueueStats) -> u64,
    );
    let per_queue: [Field; 9] = [
        ("ready", "Messages available to RESERVE now", "gauge", |q| {
            q.ready
        }),
        ("leased", "Messages leased to a consumer", "gauge", |q| {
            q.leased
        }),
        (
            "delayed",
            "Messages waiting for their delay",
            "gauge",
            |q| q.delayed,
        ),
        ("dead_lettered", "Dead letters kept", "gauge", |q| {
            q.dead_lettered
        }),
        ("bytes", "Payload bytes of live messages", "gauge", |q| {
            q.bytes
        }),
        ("pushed_total", "Messages pushed", "counter", |q| {
            q.pushed_total
        }),
        ("acked_total", "Messages acknowledged", "counter", |q| {
            q.acked_total
        }),
        ("expired_total", "Leases that ran out", "counter", |q| {
            q.expired_total
        }),
        (
            "dead_lettered_total",
            "Messages moved to the dead-letter queue",
            "counter",
            |q| q.dead_lettered_total,
        ),
    ];
    for (name, help, kind, get) in per_queue {
        gauge(&mut o, name, help, kind);
        for (q, s) in &stats.queues {
            let _ = writeln!(
                o,
                "remora_queue_{name}{{queue=\"{}\"}} {}",
                escape(q),
                get(s)
            );
        }
    }
    gauge(
        &mut o,
        "ready_by_priority",
        "Ready messages per priority",
        "gauge",
    );
    for (q, s) in &stats.queues {
        for (p, n) in &s.ready_by_priority {
            let _ = writeln!(
                o,
                "remora_queue_ready_by_priority{{queue=\"{}\",priority=\"{p}\"}} {n}",
                escape(q)
            );
        }
    }
    let sv = &stats.server;
    for (name, help, kind, v) in [
        (
            "uptime_seconds",
            "Seconds since start",
            "gauge",
            sv.uptime_ms / 1000,
        ),
        ("connections", "Open connections", "gauge", sv.connections),
        (
            "connections_total",
            "Connections accepted",
            "counter",
            sv.connections_total,
        ),
        (
            "subscribers",
            "Pub/sub subscriptions",
            "gauge",
            sv.subscribers,
        ),
        (
            "events_published_total",
            "Pub/sub events published",
            "counter",
            sv.events_published_total,
        ),
        (
            "events_dropped_total",
            "Pub/sub events dropped for slow subscribers",
            "counter",
            sv.events_dropped_total,
        ),
        (
            "log_bytes",
            "Bytes in the durable log",
            "gauge",
            sv.log_bytes,
        ),
        (
            "affinity_hits_total",
            "Keyed deliveries to the consumer that owns the key (holds a warm connection)",
            "counter",
            stats.affinity.hits_total,
        ),
        (
            "affinity_misses_total",
            "Keyed deliveries to another consumer than the key's owner",
            "counter",
            stats.affinity.misses_total,
        ),
        (
            "affinity_unowned_total",
            "Keyed deliveries of a key no consumer owned (a cold connection)",
            "counter",
            stats.affinity.unowned_total,
        ),
        (
            "affinity_keys",
            "Affinity keys with an owner",
            "gauge",
            stats.affinity.keys,
        ),
        (
            "affinity_consumers",
            "Consumers (workers) connected that reserve under a name",
            "gauge",
            stats.affinity.consumers,
        ),
    ] {
        gauge(&mut o, name, help, kind);
        let _ = writeln!(o, "remora_queue_{name} {v}");
    }
    o
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serve `GET /metrics` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    client: Client,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let client = client.clone();
            async move {
                match client.stats().await {
                    Ok(s) => (
                        axum::http::StatusCode::OK,
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        render(&s),
                    ),
                    Err(e) => (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        [(axum::http::header::CONTENT_TYPE, "text/plain")],
                        format!("stats unavailable: {e}\n"),
                    ),
                }
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_queues_and_priorities() {
        let mut st = crate::Stats::default();
        let q = crate::QueueStats {
            ready: 3,
            leased: 1,
            ready_by_priority: [(9u8, 2u64), (5, 1)].into_iter().collect(),
            pushed_total: 7,
            ..Default::default()
        };
        st.queues.insert("jobs".into(), q);
        st.affinity.hits_total = 4;
        let text = super::render(&st);
        assert!(
            text.contains("# TYPE remora_queue_affinity_hits_total counter\nremora_queue_affinity_hits_total 4"),
            "{text}"
        );
        assert!(
            text.contains("remora_queue_ready{queue=\"jobs\"} 3"),
            "{text}"
        );
        assert!(text.contains("remora_queue_ready_by_priority{queue=\"jobs\",priority=\"9\"} 2"));
        assert!(text.contains(
            "# TYPE remora_queue_pushed_total counter\nremora_queue_pushed_total{queue=\"jobs\"} 7"
        ));
    }
}
