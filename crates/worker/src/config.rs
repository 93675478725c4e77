//! Command-line / environment configuration of the worker.

use crate::WorkerConfig;
use std::time::Duration;

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "remora-worker",
    version,
    about = "Remora worker: runs queued jobs over SSH"
)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub store: remora_store::config::StoreArgs,
    #[command(flatten)]
    pub worker: WorkerOpts,
    /// Queue server address, or several comma-separated (`a:9000,b:9001`): the preferred first,
    /// then standbys to fail over to when the active one dies.
    #[arg(long, env = "REMORA_QUEUE_ADDR", default_value = "127.0.0.1:9000")]
    pub queue_addr: String,
    /// Seconds a queue may leave a keepalive ping unanswered before the worker moves to the next
    /// queue address (0 = no pings: only a closed or reset connection counts).
    #[arg(long, env = "REMORA_QUEUE_PING_TIMEOUT", default_value_t = remora_netqueue::client::DEFAULT_PING_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub queue_ping_timeout_secs: u64,
    /// Token for the queue handshake.
    #[arg(long, env = "REMORA_QUEUE_TOKEN", hide_env_values = true)]
    pub queue_token: Option<String>,
    /// `text` or `json`.
    #[arg(long, env = "REMORA_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Serve Prometheus metrics at `http://ADDR/metrics` (off unless set).
    #[arg(long, env = "REMORA_WORKER_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct WorkerOpts {
    /// Worker id (default: random).
    #[arg(long, env = "REMORA_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Jobs run at once by this worker.
    #[arg(long, env = "REMORA_WORKER_CONCURRENCY", default_value_t = 16)]
    pub concurrency: usize,
    /// Stored output cap per job, bytes (stdout + stderr).
    #[arg(long, env = "REMORA_OUTPUT_CAP", default_value_t = 16 * 1024 * 1024)]
    pub output_cap: u64,
    /// Seconds between TERM and KILL when canceling or timing out.
    #[arg(long, env = "REMORA_KILL_GRACE", default_value_t = 5)]
    pub kill_grace_secs: u64,
    /// SSH connect + handshake + auth timeout, seconds.
    #[arg(long, env = "REMORA_SSH_CONNECT_TIMEOUT", default_value_t = 10)]
    pub connect_timeout_secs: u64,
    /// Seconds running jobs may take to finish after SIGTERM before they are canceled.
    #[arg(long, env = "REMORA_DRAIN_TIMEOUT", default_value_t = 30)]
    pub drain_timeout_secs: u64,
    /// Seconds between heartbeats.
    #[arg(long, env = "REMORA_HEARTBEAT_INTERVAL", default_value_t = 5)]
    pub heartbeat_secs: u64,
    /// Jump hosts allowed on the way to one server (1–16).
    #[arg(long, env = "REMORA_MAX_JUMP_DEPTH", default_value_t = remora_ssh::chain::DEFAULT_MAX_JUMP_DEPTH as u64, value_parser = clap::value_parser!(u64).range(1..=16))]
    pub max_jump_depth: u64,
    /// Seconds a pooled SSH connection with no job on it stays open (checked each heartbeat).
    #[arg(long, env = "REMORA_SSH_IDLE_TIMEOUT", default_value_t = remora_ssh::DEFAULT_IDLE_TIMEOUT.as_secs())]
    pub ssh_idle_timeout_secs: u64,
    /// Pooled SSH connections with no job on them kept at most (least recently used close first).
    #[arg(long, env = "REMORA_SSH_MAX_IDLE", default_value_t = remora_ssh::DEFAULT_MAX_IDLE)]
    pub ssh_max_idle: usize,
    /// Most bcrypt-pbkdf rounds an encrypted OpenSSH key may ask for (ssh-keygen writes 16);
    /// a stored key above it fails its jobs at connect instead of stalling the worker.
    #[arg(long, env = "REMORA_MAX_KDF_ROUNDS", default_value_t = remora_ssh::keys::DEFAULT_MAX_KDF_ROUNDS, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_kdf_rounds: u32,
}

impl WorkerOpts {
    pub fn config(&self) -> WorkerConfig {
        let mut c = WorkerConfig::default();
        // An empty REMORA_WORKER_ID (a blank line in an env file) means "unset", not the id "".
        if let Some(id) = self
            .worker_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty())
        {
            c.id = id.to_string();
        }
        c.concurrency = self.concurrency.max(1);
        c.output_cap = self.output_cap;
        c.kill_grace = Duration::from_secs(self.kill_grace_secs);
        c.ssh.connect_timeout = Duration::from_secs(self.connect_timeout_secs.max(1));
        c.ssh.max_jump_depth = self.max_jump_depth as usize;
        c.ssh.idle_timeout = Duration::from_secs(self.ssh_idle_timeout_secs);
        c.ssh.max_idle = self.ssh_max_idle;
        c.ssh.key_limits.max_kdf_rounds = self.max_kdf_rounds;
        c.drain_timeout = Duration::from_secs(self.drain_timeout_secs);
        c.heartbeat_interval = Duration::from_secs(self.heartbeat_secs.max(1));
        c
    }
}

impl WorkerOpts {
    /// Raise the open-file limit and warn when this worker's connections may exceed it:
    /// one socket per running job, plus the idle pooled ones, plus a margin for the rest
    /// (database, queue, logs).
    pub fn check_open_files(&self) {
        let limit = remora_service::raise_open_file_limit();
        let needed = (self.concurrency + self.ssh_max_idle) as u64 + 64;
        remora_service::warn_if_over_open_file_limit(
            limit,
            needed,
            &format!(
                "REMORA_WORKER_CONCURRENCY={} plus REMORA_SSH_MAX_IDLE={} idle connections",
                self.concurrency, self.ssh_max_idle
            ),
        );
    }
}

impl WorkerArgs {
    pub fn config(&self) -> WorkerConfig {
        self.worker.config()
    }

    /// The queue client's settings from `--queue-token` and `--queue-ping-timeout`.
    pub fn queue_client_config(&self) -> remora_netqueue::ClientConfig {
        remora_netqueue::ClientConfig {
            token: self.queue_token.clone(),
            ping_timeout: Duration::from_secs(self.queue_ping_timeout_secs),
            ..Default::default()
        }
    }
}
