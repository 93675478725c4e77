//! `remora-netqueue`: parse flags/env, init tracing, bind, serve until Ctrl-C or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use remora_netqueue::{FsyncPolicy, ServerConfig};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "remora-netqueue",
    version,
    about = "Remora's durable, leased, priority job queue server"
)]
struct Args {
    /// Address to listen on (loopback by default).
    #[arg(long, env = "REMORA_QUEUE_ADDR", default_value = "127.0.0.1:9000")]
    addr: String,
    /// Directory for the queue log. Defaults to $REMORA_DATA_DIR/queue, else ./data/queue.
    #[arg(long, env = "REMORA_QUEUE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Keep everything in memory (nothing survives a restart).
    #[arg(long, env = "REMORA_QUEUE_IN_MEMORY", conflicts_with = "data_dir")]
    in_memory: bool,
    /// Shared secret clients must present. Required unless the address is loopback.
    #[arg(long, env = "REMORA_QUEUE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// always | interval:<ms> | never.
    #[arg(long, env = "REMORA_QUEUE_FSYNC", default_value = "always")]
    fsync: FsyncPolicy,
    /// Largest request frame in bytes.
    #[arg(long, env = "REMORA_QUEUE_MAX_FRAME", default_value_t = 1024 * 1024)]
    max_frame: usize,
    /// Deliveries after which a message whose lease ran out is dead-lettered (0 = unlimited; a
    /// NACK never dead-letters).
    #[arg(long, env = "REMORA_QUEUE_MAX_ATTEMPTS", default_value_t = 5)]
    max_attempts: u32,
    /// Live messages allowed per queue.
    #[arg(long, env = "REMORA_QUEUE_MAX_MESSAGES", default_value_t = 1_000_000)]
    max_queue_messages: usize,
    /// Live payload bytes allowed per queue.
    #[arg(long, env = "REMORA_QUEUE_MAX_BYTES", default_value_t = 1 << 30)]
    max_queue_bytes: usize,
    /// Time a new connection has to send HELLO, in milliseconds.
    #[arg(
        long,
        env = "REMORA_QUEUE_HANDSHAKE_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    handshake_timeout_ms: u64,
    /// Largest frame accepted before HELLO succeeds, in bytes.
    #[arg(long, env = "REMORA_QUEUE_MAX_HELLO_FRAME", default_value_t = 4096)]
    max_hello_frame: usize,
    /// Journal records held in memory for the log writer before a snapshot replaces them.
    #[arg(
        long,
        env = "REMORA_QUEUE_MAX_PENDING_RECORDS",
        default_value_t = 100_000
    )]
    max_pending_records: usize,
    /// Concurrent client connections (further ones wait in the kernel's accept backlog).
    #[arg(long, env = "REMORA_QUEUE_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    /// Log segment size in bytes.
    #[arg(long, env = "REMORA_QUEUE_SEGMENT_BYTES", default_value_t = 64 * 1024 * 1024)]
    segment_bytes: u64,
    /// Compact once the log is at least this big (and over twice the live data).
    #[arg(long, env = "REMORA_QUEUE_COMPACT_MIN_BYTES", default_value_t = 64 * 1024 * 1024)]
    compact_min_bytes: u64,
    /// Milliseconds a job waits for the worker that holds a warm connection to its server
    /// (the affinity key's owner) before another worker may take it; 0 disables affinity.
    #[arg(long, env = "REMORA_QUEUE_AFFINITY_WAIT_MS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    affinity_wait_ms: u64,
    /// Affinity keys (servers) the queue remembers an owner for at most.
    #[arg(
        long,
        env = "REMORA_QUEUE_MAX_AFFINITY_KEYS",
        default_value_t = 1_000_000
    )]
    max_affinity_keys: usize,
    /// text | json.
    #[arg(long, env = "REMORA_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Serve Prometheus metrics (GET /metrics) on this address; off when unset.
    #[arg(long, env = "REMORA_QUEUE_METRICS_ADDR")]
    metrics_addr: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    remora_service::init_tracing(&args.log_format);
    remora_service::raise_open_file_limit();

    let data_dir = if args.in_memory {
        None
    } else {
        Some(args.data_dir.clone().unwrap_or_else(|| {
            std::env::var_os("REMORA_DATA_DIR")
                .map_or_else(|| PathBuf::from("./data"), PathBuf::from)
                .join("queue")
        }))
    };
    let config = ServerConfig {
        data_dir,
        token: args.token.filter(|t| !t.is_empty()),
        max_frame: args.max_frame,
        fsync: args.fsync,
        max_attempts: args.max_attempts,
        max_queue_messages: args.max_queue_messages,
        max_queue_bytes: args.max_queue_bytes,
        max_connections: args.max_connections,
        segment_bytes: args.segment_bytes,
        compact_min_bytes: args.compact_min_bytes,
        handshake_timeout: std::time::Duration::from_millis(args.handshake_timeout_ms.max(1)),
        max_hello_frame: args.max_hello_frame,
        max_pending_records: args.max_pending_records,
        affinity_wait: std::time::Duration::from_millis(args.affinity_wait_ms),
        max_affinity_keys: args.max_affinity_keys,
        ..ServerConfig::default()
    };
    let listener = tokio::net::TcpListener::bind(&args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    remora_netqueue::exposure::check_listen(listener.local_addr()?, config.token.as_deref())?;
    if config.token.is_none() {
        tracing::warn!("REMORA_QUEUE_TOKEN is not set: any local process can use the queue");
    }
    // Machine-readable line so supervisors and tests can find the bound port.
    println!("listening on {}", listener.local_addr()?);

    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        remora_service::wait_for_signal().await;
        tracing::info!("shutting down");
        signal.cancel();
    });
    let token = config.token.clone();
    let queue_addr = listener.local_addr()?.to_string();
    if let Some(maddr) = args.metrics_addr.filter(|a| !a.trim().is_empty()) {
        let ml = tokio::net::TcpListener::bind(&maddr)
            .await
            .with_context(|| format!("binding the metrics address {maddr}"))?;
        tracing::info!(addr = %ml.local_addr()?, "metrics on /metrics");
        let sd = shutdown.clone();
        tokio::spawn(async move {
            // The queue's own client, lazily connected: the server starts below.
            match remora_netqueue::Client::connect_lazy(&queue_addr, token).await {
                Ok(c) => {
                    if let Err(e) = remora_netqueue::metrics::serve(ml, c, sd).await {
                        tracing::warn!(error = %e, "metrics endpoint stopped");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "metrics endpoint could not reach the queue"),
            }
        });
    }
    remora_netqueue::run(listener, config, shutdown)
        .await
        .context("queue server failed")
}
