//! Process start-up shared by every Remora binary (api, worker, netqueue, `remora up`): log
//! setup from `REMORA_LOG_FORMAT`, the shutdown signals, and argument errors that name the
//! environment variable a bad value came from.

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

/// The open-file limit of this process after [`raise_open_file_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// Soft limit before the raise.
    pub before: u64,
    /// Soft limit now (what `open`, `socket` and `accept` are held to).
    pub soft: u64,
    /// Hard limit: the most an unprivileged process may raise its soft limit to.
    pub hard: u64,
}

/// Raises the soft open-file limit (`RLIMIT_NOFILE`) to the hard limit and logs both: every
/// SSH connection, pooled or running, holds a socket, so a fleet of thousands of hosts needs
/// far more than the common default soft limit of 1024. Call once at start, after
/// [`init_tracing`]. Never fails: if the limit cannot be read or raised, it says so and the
/// process goes on under the limit it has.
pub fn raise_open_file_limit() -> Option<OpenFileLimit> {
    use rlimit::Resource;
    let (before, hard) = match Resource::NOFILE.get() {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit (RLIMIT_NOFILE)");
            return None;
        }
    };
    let soft = match rlimit::increase_nofile_limit(hard) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, soft = before, hard, "cannot raise the open-file limit");
            before
        }
    };
    tracing::info!(
        before,
        soft,
        hard,
        "open-file limit (RLIMIT_NOFILE) raised to the hard limit"
    );
    Some(OpenFileLimit { before, soft, hard })
}

/// Warns at start when `needed` open files (e.g. a worker's concurrency plus the idle
/// connections it may keep) exceed the soft limit: past it, connects fail with
/// "too many open files". `what` says where `needed` comes from, `fix` how to lower it.
pub fn warn_if_over_open_file_limit(limit: Option<OpenFileLimit>, needed: u64, what: &str) -> bool {
    let Some(l) = limit else { return false };
    if needed <= l.soft {
        return false;
    }
    tracing::warn!(
        needed,
        soft = l.soft,
        hard = l.hard,
        "{what} may need {needed} open files, above this process's open-file limit of {}: \
         connections past it fail with \"too many open files\". Raise the hard limit \
         (`LimitNOFILE=` in the systemd unit, `ulimit -Hn` as root, `nofile` in \
         /etc/security/limits.conf, `--ulimit nofile=` for docker) or lower the numbers above",
        l.soft
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    // nextest runs each test in its own process, so changing this process's limit is contained.
    #[test]
    fn the_soft_open_file_limit_is_raised_to_the_hard_limit() {
        let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
        let low = hard.min(256);
        rlimit::Resource::NOFILE.set(low, hard).unwrap();
        let l = raise_open_file_limit().unwrap();
        assert_eq!(l.before, low);
        assert_eq!(l.soft, hard);
        assert_eq!(rlimit::Resource::NOFILE.get().unwrap().0, hard);
        assert!(warn_if_over_open_file_limit(Some(l), hard + 1, "a test"));
        assert!(!warn_if_over_open_file_limit(Some(l), hard, "a test"));
    }
}

/// `T::parse()`, except that a bad value read from an environment variable names that
/// variable (clap names only the flag, which the operator may never have typed).
pub fn parse_args<T: clap::Parser>() -> T {
    match T::try_parse() {
        Ok(t) => t,
        Err(e) => {
            let hint = env_hint(&T::command(), &e);
            let _ = e.print();
            if let Some(h) = hint {
                eprintln!("{h}");
            }
            std::process::exit(e.exit_code());
        }
    }
}

/// "the value came from REMORA_X" when `e` is about a flag whose environment variable is set
/// (and the flag was not given on the command line, which clap prefers).
fn env_hint(cmd: &clap::Command, e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = arg.strip_prefix("--")?.split([' ', '=']).next()?;
    let a = cmd.get_arguments().find(|a| a.get_long() == Some(long))?;
    let var = a.get_env()?;
    let flag = format!("--{long}");
    let on_cmdline = std::env::args().any(|x| x == flag || x.starts_with(&format!("{flag}=")));
    (std::env::var_os(var).is_some() && !on_cmdline).then(|| {
        format!(
            "(the value came from the environment variable {})",
            var.to_string_lossy()
        )
    })
}
