//! The NetQueue server's settings and `run`, which wires its parts together: the log writer
//! (`durability`), the timer that ends leases and delays (`timer`), the accept loop (`listener`),
//! one handler per connection (`connection`) and the request handlers (`commands`).

mod commands;
mod connection;
mod durability;
mod listener;
mod shared;
mod timer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

pub use crate::log::FsyncPolicy;
use crate::protocol::DEFAULT_MAX_FRAME;
use crate::queue::{Broker, Limits};
use shared::Shared;

/// Server settings. Tests build this directly; the binary fills it from flags and env vars.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the log lives; `None` keeps everything in memory (nothing survives a restart).
    pub data_dir: Option<PathBuf>,
    /// Shared secret every client must present in HELLO; `None` disables auth.
    pub token: Option<String>,
    /// Largest frame body accepted, checked before the body is read.
    pub max_frame: usize,
    pub fsync: FsyncPolicy,
    /// Deliveries after which a message whose lease ran out is dead-lettered; 0 = unlimited.
    pub max_attempts: u32,
    pub max_queue_messages: usize,
    pub max_queue_bytes: usize,
    pub max_dead_letters: usize,
    /// Concurrent connections; further ones wait in the accept backlog.
    pub max_connections: usize,
    /// Requests one connection may have in progress (e.g. long-polls, pushes awaiting fsync).
    pub max_inflight: usize,
    /// Longest lease or delay a client may ask for.
    pub max_lease: Duration,
    /// Time a new connection has to complete the handshake.
    pub handshake_timeout: Duration,
    /// Largest frame accepted before HELLO succeeded (HELLO is a few dozen bytes plus the token).
    pub max_hello_frame: usize,
    /// Events buffered per subscribed connection before new ones are dropped for it.
    pub subscriber_buffer: usize,
    pub segment_bytes: u64,
    pub compact_min_bytes: u64,
    /// Journal records held for the log writer; past this a snapshot replaces the backlog.
    pub max_pending_records: usize,
    /// How long a message with an affinity key waits for the consumer that owns the key before
    /// another may take it; zero disables affinity.
    pub affinity_wait: Duration,
    /// Affinity keys remembered at most.
    pub max_affinity_keys: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            data_dir: None,
            token: None,
            max_frame: DEFAULT_MAX_FRAME,
            fsync: FsyncPolicy::Always,
            max_attempts: limits.max_attempts,
            max_queue_messages: limits.max_queue_messages,
            max_queue_bytes: limits.max_queue_bytes,
            max_dead_letters: limits.max_dead_letters,
            max_connections: 4096,
            max_inflight: 1024,
            max_lease: Duration::from_secs(24 * 3600),
            handshake_timeout: Duration::from_secs(10),
            max_hello_frame: 4096,
            subscriber_buffer: 4096,
            segment_bytes: 64 * 1024 * 1024,
            compact_min_bytes: 64 * 1024 * 1024,
            max_pending_records: 100_000,
            affinity_wait: limits.affinity_wait,
            max_affinity_keys: limits.max_affinity_keys,
        }
    }
}

impl ServerConfig {
    /// The limits the broker enforces.
    fn limits(&self) -> Limits {
        Limits {
            max_attempts: self.max_attempts,
            max_queue_messages: self.max_queue_messages,
            max_queue_bytes: self.max_queue_bytes,
            max_dead_letters: self.max_dead_letters,
            affinity_wait: self.affinity_wait,
            max_affinity_keys: self.max_affinity_keys,
        }
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("opening the queue log in {dir}: {source}")]
    OpenLog {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("queue log writer failed: {0}")]
    Log(String),
}

/// Serves NetQueue on `listener` until `shutdown` is cancelled.
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let journaling = config.data_dir.is_some();
    let broker = Broker::new(config.limits(), random_u64() >> 1, journaling);
    let (broker, log) = match &config.data_dir {
        Some(dir) => {
            let (broker, log) = durability::open(dir, &config, broker).await?;
            (broker, Some(log))
        }
        None => (broker, None),
    };

    let (durable_tx, durable_rx) = durability::channel();
    let shared = Arc::new(Shared::new(
        broker,
        config,
        log.is_some().then_some(durable_rx),
    ));
    let writer = log.map(|log| durability::spawn_writer(shared.clone(), log, durable_tx));

    let tracker = TaskTracker::new();
    tracker.spawn(timer::run(shared.clone(), shutdown.clone()));
    info!(addr = ?listener.local_addr().ok(), "netqueue listening");
    listener::Listener::new(&listener, &shared, &tracker, &shutdown)
        .run()
        .await;
    shutdown.cancel();
    tracker.close();
    tracker.wait().await;

    if let Some(handle) = writer {
        durability::stop_writer(&shared, handle).await?;
    }
    Ok(())
}

/// The seed of lease ids: random per start, so an ack from before a restart is refused.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
