//! Command-line / environment configuration of the API.

use crate::ApiConfig;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "remora-api",
    version,
    about = "Remora REST API and dashboard server"
)]
pub struct ApiArgs {
    #[command(flatten)]
    pub store: remora_store::config::StoreArgs,
    /// Address to listen on (loopback unless you say otherwise).
    #[arg(long, env = "REMORA_API_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    #[command(flatten)]
    pub api: ApiOpts,
    /// Queue server address, or several comma-separated (`a:9000,b:9001`): the preferred first,
    /// then standbys to fail over to when the active one dies.
    #[arg(long, env = "REMORA_QUEUE_ADDR", default_value = "127.0.0.1:9000")]
    pub queue_addr: String,
    /// Seconds a queue may leave a keepalive ping unanswered before the API moves to the next
    /// queue address (0 = no pings: only a closed or reset connection counts).
    #[arg(long, env = "REMORA_QUEUE_PING_TIMEOUT", default_value_t = remora_netqueue::client::DEFAULT_PING_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub queue_ping_timeout_secs: u64,
    /// Token for the queue handshake.
    #[arg(long, env = "REMORA_QUEUE_TOKEN", hide_env_values = true)]
    pub queue_token: Option<String>,
    /// Admin API token; when unset, one is generated on first start.
    #[arg(long, env = "REMORA_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// `text` or `json`.
    #[arg(long, env = "REMORA_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Jump hosts allowed on the way to one server (1–16). Here and not in `ApiOpts`
    /// because `remora up` flattens the API's and the worker's options together and takes
    /// this one from the worker's.
    #[arg(long, env = "REMORA_MAX_JUMP_DEPTH", default_value_t = remora_ssh::chain::DEFAULT_MAX_JUMP_DEPTH as u64, value_parser = clap::value_parser!(u64).range(1..=16))]
    pub max_jump_depth: u64,
    /// Most bcrypt-pbkdf rounds an encrypted OpenSSH key may ask for (ssh-keygen writes 16);
    /// a key above it is refused with a 422. Top-level for the same reason as
    /// `max_jump_depth`.
    #[arg(long, env = "REMORA_MAX_KDF_ROUNDS", default_value_t = remora_ssh::keys::DEFAULT_MAX_KDF_ROUNDS, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_kdf_rounds: u32,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ApiOpts {
    /// Directory with the built dashboard (served at `/`).
    #[arg(long, env = "REMORA_WEB_DIR", default_value = "web/out")]
    pub web_dir: PathBuf,
    /// Largest request body, bytes.
    #[arg(long, env = "REMORA_MAX_BODY", default_value_t = 8 * 1024 * 1024)]
    pub max_body: usize,
    /// Largest script of a script job, bytes.
    #[arg(long, env = "REMORA_MAX_SCRIPT_BYTES", default_value_t = remora_domain::command::DEFAULT_MAX_SCRIPT_BYTES)]
    pub max_script_bytes: usize,
    /// Largest command text (`command` plus `args`, or a script job's `shell` plus `args`), bytes.
    #[arg(long, env = "REMORA_MAX_COMMAND_BYTES", default_value_t = remora_domain::command::DEFAULT_MAX_COMMAND_BYTES)]
    pub max_command_bytes: usize,
    /// Most `env` variables of one job.
    #[arg(long, env = "REMORA_MAX_ENV_VARS", default_value_t = remora_domain::command::DEFAULT_MAX_ENV_VARS)]
    pub max_env_vars: usize,
    /// Largest `env` of one job, names plus values, bytes.
    #[arg(long, env = "REMORA_MAX_ENV_BYTES", default_value_t = remora_domain::command::DEFAULT_MAX_ENV_BYTES)]
    pub max_env_bytes: usize,
    /// Comma-separated shells a script job may use.
    #[arg(long, env = "REMORA_ALLOWED_SHELLS", value_delimiter = ',')]
    pub allowed_shells: Option<Vec<String>>,
    /// Largest job timeout, seconds.
    #[arg(long, env = "REMORA_MAX_TIMEOUT", default_value_t = 7 * 24 * 3600)]
    pub max_timeout: i64,
    /// Most hosts one multi-server submission may target.
    #[arg(long, env = "REMORA_MAX_BATCH_HOSTS", default_value_t = 10_000)]
    pub max_batch_hosts: usize,
    /// Largest inventory file `POST /servers/import` takes, bytes (also bounded by REMORA_MAX_BODY).
    #[arg(long, env = "REMORA_MAX_IMPORT_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_import_bytes: usize,
    /// Most host patterns one trusted CA may hold (1–100000); one more is a 422.
    #[arg(long, env = "REMORA_MAX_CA_PATTERNS", default_value_t = crate::trusted_cas::DEFAULT_MAX_PATTERNS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pub max_ca_patterns: usize,
    /// Requests per second per token (burst: twice that); 0 disables rate limiting.
    #[arg(long, env = "REMORA_RATE_LIMIT", default_value_t = 100)]
    pub rate_limit: u32,
    /// How long a token read valid is trusted without reading it again, ms (0–60000; 0 reads it
    /// on every request). A revoke counts at once on the API that did it, within this on others.
    #[arg(long, env = "REMORA_AUTH_CACHE_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub auth_cache_ms: u64,
    /// Comma-separated origins allowed by CORS (e.g. http://localhost:3000); empty = CORS off.
    #[arg(long, env = "REMORA_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Option<Vec<String>>,
    /// Job lists count matching rows up to this many, then report `total_exact: false` (0 = always exact).
    #[arg(long, env = "REMORA_LIST_COUNT_CAP", default_value_t = 10_000)]
    pub list_count_cap: i64,
    /// Job lists with a free-text `search` count matches up to this many (0 = always exact).
    #[arg(long, env = "REMORA_SEARCH_COUNT_CAP", default_value_t = 1_000)]
    pub search_count_cap: i64,
    /// Live events buffered per watched job before a slow stream falls back to the database.
    #[arg(long, env = "REMORA_SSE_JOB_BUFFER", default_value_t = 1024)]
    pub sse_job_buffer: usize,
    /// Status events buffered for `/events` before a slow client gets `event: lagged`.
    #[arg(long, env = "REMORA_SSE_STATUS_BUFFER", default_value_t = 4096)]
    pub sse_status_buffer: usize,
    /// Open SSE streams (job streams and `/events`) one token may hold; one more is a 429.
    #[arg(long, env = "REMORA_SSE_MAX_PER_TOKEN", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    pub sse_max_per_token: u64,
    /// Open SSE streams in all; one more is a 429.
    #[arg(long, env = "REMORA_SSE_MAX_TOTAL", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub sse_max_total: u64,
    /// Seconds between a job stream's reads of the job in case an event was lost (it wakes on
    /// the job's events otherwise).
    #[arg(long, env = "REMORA_SSE_FALLBACK_POLL", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub sse_fallback_poll_secs: u64,
    /// Per-host timeout of server checks, seconds.
    #[arg(long, env = "REMORA_CHECK_TIMEOUT", default_value_t = 5)]
    pub check_timeout_secs: u64,
    /// Servers checked at once by the bulk status check.
    #[arg(long, env = "REMORA_CHECK_CONCURRENCY", default_value_t = 32)]
    pub check_concurrency: usize,
    /// Largest PEM upload, bytes.
    #[arg(long, env = "REMORA_PEM_MAX_BYTES", default_value_t = 64 * 1024)]
    pub pem_max_bytes: usize,
    /// Seconds without a heartbeat after which a worker is down and its jobs end.
    #[arg(long, env = "REMORA_WORKER_DOWN_AFTER", default_value_t = 30)]
    pub worker_down_after_secs: u64,
    /// Seconds between the reconciler's passes, which push every job the database holds as
    /// `queued` to the queue again (it also runs at start, soon after a failed push, and at once
    /// when the queue connection is re-established, e.g. after a failover to a standby queue).
    #[arg(long, env = "REMORA_RECONCILE_INTERVAL", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub reconcile_interval_secs: u64,
    /// Milliseconds between scheduler passes over due schedules.
    #[arg(long, env = "REMORA_SCHEDULE_TICK_MS", default_value_t = 1000)]
    pub schedule_tick_ms: u64,
    /// Seconds late after which a due time counts as missed (the scheduler was down); the
    /// schedule's catch_up then decides between one run and none.
    #[arg(long, env = "REMORA_SCHEDULE_GRACE", default_value_t = 60)]
    pub schedule_grace_secs: u64,
    /// Seconds a connection may take to send a whole request head (the first request, or
    /// the next one on an idle keep-alive connection) before it is closed.
    #[arg(long, env = "REMORA_HEADER_READ_TIMEOUT", default_value_t = crate::serve::DEFAULT_HEADER_READ_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_read_timeout_secs: u64,
    /// Seconds a request body may take to arrive in full, counted from its head; later, the
    /// request is answered 408 `body_timeout` and the connection closed (1–3600).
    #[arg(long, env = "REMORA_BODY_TIMEOUT", default_value_t = crate::body_timeout::DEFAULT_BODY_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout_secs: u64,
    /// Most open HTTP connections; further ones wait in the listen backlog until one closes.
    #[arg(long, env = "REMORA_MAX_CONNECTIONS", default_value_t = crate::serve::DEFAULT_MAX_CONNECTIONS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_connections: usize,
    #[command(flatten)]
    pub notify: remora_notify::NotifyArgs,
    #[command(flatten)]
    pub maintenance: remora_store::maintenance::MaintenanceArgs,
}

impl ApiOpts {
    pub fn config(&self) -> ApiConfig {
        let mut c = ApiConfig {
            web_dir: Some(self.web_dir.clone()),
            max_body: self.max_body,
            max_timeout: self.max_timeout,
            max_batch_hosts: self.max_batch_hosts.max(1),
            max_import_bytes: self.max_import_bytes.max(1),
            max_ca_patterns: self.max_ca_patterns,
            text_limits: remora_domain::command::TextLimits {
                max_script_bytes: self.max_script_bytes,
                max_command_bytes: self.max_command_bytes,
                max_env_vars: self.max_env_vars,
                max_env_bytes: self.max_env_bytes,
            },
            ..Default::default()
        };
        if let Some(s) = &self.allowed_shells {
            let shells: Vec<String> = s
                .iter()
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect();
            // An empty REMORA_ALLOWED_SHELLS means "unset" (the default list), not "no shell".
            if !shells.is_empty() {
                c.allowed_shells = shells;
            }
        }
        c.worker_down_after = std::time::Duration::from_secs(self.worker_down_after_secs.max(1));
        c.rate_limit = self.rate_limit;
        c.auth_cache_ms = self.auth_cache_ms;
        c.list_count_cap = self.list_count_cap.max(0);
        c.search_count_cap = self.search_count_cap.max(0);
        c.sse_job_buffer = self.sse_job_buffer.max(1);
        c.sse_status_buffer = self.sse_status_buffer.max(1);
        c.sse_max_per_token = self.sse_max_per_token as usize;
        c.sse_max_total = self.sse_max_total as usize;
        c.sse_fallback_poll = std::time::Duration::from_secs(self.sse_fallback_poll_secs);
        c.cors_origins = self
            .cors_origins
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty())
            .collect();
        c.check_timeout = std::time::Duration::from_secs(self.check_timeout_secs.max(1));
        c.check_concurrency = self.check_concurrency.max(1);
        c.pem_max_bytes = self.pem_max_bytes;
        c.schedule_tick = std::time::Duration::from_millis(self.schedule_tick_ms.max(100));
        c.reconcile_interval = std::time::Duration::from_secs(self.reconcile_interval_secs.max(1));
        c.schedule_grace = std::time::Duration::from_secs(self.schedule_grace_secs);
        c.header_read_timeout = std::time::Duration::from_secs(self.header_read_timeout_secs);
        c.body_timeout = std::time::Duration::from_secs(self.body_timeout_secs);
        c.max_connections = self.max_connections.max(1);
        c.notify = self.notify.config();
        c.maintenance = self.maintenance.config();
        c
    }
}

impl ApiArgs {
    /// The queue client's settings from `--queue-token` and `--queue-ping-timeout`.
    pub fn queue_client_config(&self) -> remora_netqueue::ClientConfig {
        remora_netqueue::ClientConfig {
            token: self.queue_token.clone(),
            ping_timeout: std::time::Duration::from_secs(self.queue_ping_timeout_secs),
            ..Default::default()
        }
    }

    pub fn config(&self) -> ApiConfig {
        let mut c = self.api.config();
        c.max_jump_depth = self.max_jump_depth as usize;
        c.key_limits.max_kdf_rounds = self.max_kdf_rounds;
        c
    }
}
