//! Process start-up shared by every Remora binary (api, worker, netqueue, `remora up`): log
//! setup from `REMORA_LOG_FORMAT` and the shutdown signals.

use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is unset: our crates at info, the chattiest dependencies quieter.
const DEFAULT_FILTER: &str = "info,sqlx=warn,russh=warn,tower_http=info";

/// Installs the global subscriber: `json` gives one JSON object per line, anything else (the
/// default `text`) human-readable lines; both on stderr, so stdout stays free for machine-readable
/// output such as netqueue's `listening on` line. Filter with `RUST_LOG`. A second call (tests
/// that start several components in one process) leaves the first subscriber in place.
pub fn init_tracing(format: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM: the binaries' shutdown signal.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                // Still stoppable with Ctrl-C; a supervisor's SIGTERM then kills the process.
                tracing::warn!(error = %e, "cannot install a SIGTERM handler; only Ctrl-C stops");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
