//! remora-notify: webhook and email notifications of job, batch, schedule, host-key and worker events, signed, retried with backoff and logged.
//!
//! Two background tasks, both safe to run in several API instances on one
//! database: the [`dispatch`] task turns finished jobs into deliveries (the
//! store's `notified` claim makes that exactly once, see
//! `remora_store::notifications`), and the [`sender`] task claims due
//! deliveries in the database, sends them and records each attempt.

pub mod backoff;
pub mod dispatch;
pub mod payload;
pub mod send;
pub mod sender;
pub mod sign;

/// URLs as webhook targets parse them.
pub use reqwest::Url;

use std::time::Duration;

/// Settings of notifications (environment, see [`NotifyArgs`]). `Debug`
/// hides the SMTP URL (it may carry a password).
#[derive(Clone)]
pub struct NotifyConfig {
    /// How often the tasks look for work when nothing woke them.
    pub poll: Duration,
    /// Give up on a delivery this long after it was created.
    pub retry_window: Duration,
    /// First retry delay; doubled per attempt up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Timeout of one webhook request or SMTP conversation.
    pub timeout: Duration,
    /// Deliveries sent at once by one instance.
    pub concurrency: usize,
    /// `smtps://[user:pass@]host[:port]` (TLS), `smtp://…?tls=required`
    /// (STARTTLS) or `smtp://host:port` (no TLS: local relays, tests).
    /// Email targets fail while unset.
    pub smtp_url: Option<String>,
    /// From address of emails.
    pub smtp_from: String,
}

impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("poll", &self.poll)
            .field("retry_window", &self.retry_window)
            .field("base_delay", &self.base_delay)
            .field("max_delay", &self.max_delay)
            .field("timeout", &self.timeout)
            .field("concurrency", &self.concurrency)
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "<set>"))
            .field("smtp_from", &self.smtp_from)
            .finish()
    }
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            poll: Duration::from_secs(2),
            retry_window: Duration::from_secs(24 * 3600),
            base_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
            concurrency: 8,
            smtp_url: None,
            smtp_from: "remora@localhost".into(),
        }
    }
}

/// Environment / flags of notifications (flattened into the API's).
#[derive(Debug, Clone, clap::Args)]
pub struct NotifyArgs {
    /// Milliseconds between looks for finished jobs and due deliveries.
    #[arg(long, env = "REMORA_NOTIFY_POLL_MS", default_value_t = 2000)]
    pub notify_poll_ms: u64,
    /// Hours a delivery is retried before it is given up.
    #[arg(long, env = "REMORA_NOTIFY_RETRY_HOURS", default_value_t = 24)]
    pub notify_retry_hours: u64,
    /// Seconds before the first retry (doubles per attempt).
    #[arg(long, env = "REMORA_NOTIFY_BASE_DELAY", default_value_t = 10)]
    pub notify_base_delay_secs: u64,
    /// Longest wait between two attempts, seconds.
    #[arg(long, env = "REMORA_NOTIFY_MAX_DELAY", default_value_t = 3600)]
    pub notify_max_delay_secs: u64,
    /// Timeout of one webhook request or email, seconds.
    #[arg(long, env = "REMORA_NOTIFY_TIMEOUT", default_value_t = 10)]
    pub notify_timeout_secs: u64,
    /// Deliveries one API instance sends at once.
    #[arg(long, env = "REMORA_NOTIFY_CONCURRENCY", default_value_t = 8)]
    pub notify_concurrency: usize,
    /// SMTP server of email targets: smtps://user:pass@host:465 (TLS), smtp://user:pass@host:587?tls=required (STARTTLS), smtp://host:25 (no TLS).
    #[arg(long, env = "REMORA_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// From address of notification emails.
    #[arg(long, env = "REMORA_SMTP_FROM", default_value = "remora@localhost")]
    pub smtp_from: String,
}

impl NotifyArgs {
    pub fn config(&self) -> NotifyConfig {
        NotifyConfig {
            poll: Duration::from_millis(self.notify_poll_ms.max(50)),
            retry_window: Duration::from_secs(self.notify_retry_hours.max(1) * 3600),
            base_delay: Duration::from_secs(self.notify_base_delay_secs.max(1)),
            max_delay: Duration::from_secs(self.notify_max_delay_secs.max(1)),
            timeout: Duration::from_secs(self.notify_timeout_secs.max(1)),
            concurrency: self.notify_concurrency.max(1),
            smtp_url: self.smtp_url.clone().filter(|u| !u.is_empty()),
            smtp_from: self.smtp_from.clone(),
        }
    }
}

/// Start both tasks on `tracker` until `shutdown`.
pub fn spawn(
    tracker: &tokio_util::task::TaskTracker,
    store: remora_store::Store,
    vault: remora_store::Vault,
    cfg: NotifyConfig,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    tracker.spawn(dispatch::run(
        store.clone(),
        cfg.clone(),
        wake.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(sender::run(store, vault, cfg, wake, shutdown));
}
