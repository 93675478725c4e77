//! Test fixtures that run real infrastructure: OpenSSH servers on loopback ([`sshd::SshHost`]) and
//! throwaway PostgreSQL databases ([`pg::database`]).
//!
//! # Fixtures
//!
//! | What | How | Module |
//! |---|---|---|
//! | OpenSSH sshd + throwaway user and key | `SshHost::start()` / `start_on(ip)` | [`sshd`] |
//! | Any kind of host below, combined | [`sshd::SshHostOptions`] builder | [`options`] |
//! | User with login shell bash, dash, zsh, ksh, fish, tcsh, BusyBox sh | `.login_shell(LoginShell::Fish)` | [`shells`] |
//! | Dropbear server | [`dropbear::start`], `.dropbear()` | [`dropbear`] |
//! | BusyBox-only host (chroot of applets) | `.busybox_chroot()` | [`busybox`] |
//! | Bastion and targets reachable only through it (netns, 10.231.0.0/16) | [`netns::NetLab`], `.in_netns(&node)` | [`netns`] |
//! | CA, host certificates (valid/expired/wrong principal/other CA), user certificates | [`certs::Ca`], `.host_certificate(..)`, `.trusted_user_ca(..)`, `SshHost::user_certificate` | [`certs`] |
//! | PAM keyboard-interactive only (`PasswordAuthentication no`) | `.pam_keyboard_interactive()` | [`options`] |
//! | sudo rights for the user (with or without password) | `.sudo(SudoRule::Password)` | [`sudo`] |
//! | Throwaway PostgreSQL database | [`pg::database`] | [`pg`] |
//!
//! Every fixture cleans up on `Drop` and, through a detached reaper process, when the test
//! process dies without dropping it (users, daemons, mounts, namespaces, files). Missing
//! packages are skips (failures under `CI=true`): `scripts/install-deps.sh` installs them all.
//!
//! # Skipping
//!
//! The fixtures need root, `/usr/sbin/sshd` or a PostgreSQL URL. When one is missing the fixture
//! returns an error whose message starts with `"SKIP:"` (or `Ok(None)` for [`pg::database`]) so a
//! developer without the setup still gets a green `cargo test`; under `CI=true` it panics instead,
//! because a skipped end-to-end test in CI is a silently missing test.
//!
//! ```no_run
//! use remora_testkit::{require, sshd::SshHost};
//!
//! #[test]
//! fn runs_over_ssh() {
//!     let host = require!(SshHost::start()); // prints "skipped: ..." and returns
//!     // ...
//! }
//! ```
//!
//! `require!(expr, value)` returns `value` instead, for tests returning `Result`. Test harnesses
//! capture stderr of passing tests: run with `--nocapture` (libtest) / `--no-capture` (nextest) to
//! see the "skipped: ..." lines.

pub mod busybox;
pub mod certs;
pub mod dropbear;
pub mod evil_keys;
pub mod netns;
pub mod options;
pub mod pg;
mod reaper;
pub mod shells;
pub mod smtp;
pub mod sshd;
pub mod sudo;

/// Prefix of error messages that mean "the environment lacks this, skip the test".
pub const SKIP_PREFIX: &str = "SKIP:";

/// True when running under CI (`CI=true` or `CI=1`): missing infrastructure is then a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Builds the error for a missing prerequisite: an `Err` starting with `SKIP:` normally, a panic
/// under CI.
pub fn skip<T>(reason: impl std::fmt::Display) -> anyhow::Result<T> {
    if in_ci() {
        panic!("test prerequisite missing under CI=true: {reason}");
    }
    Err(anyhow::anyhow!("{SKIP_PREFIX} {reason}"))
}

/// `Ok(v)` → `Some(v)`; an error starting with `SKIP:` → prints `skipped: ...` and `None`; any
/// other error panics (a broken fixture must fail the test, not hide it).
#[track_caller]
pub fn skip_or_panic<T>(result: anyhow::Result<T>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            let msg = format!("{e:#}");
            if let Some(reason) = msg.strip_prefix(SKIP_PREFIX) {
                if in_ci() {
                    panic!("test prerequisite missing under CI=true:{reason}");
                }
                eprintln!("skipped:{reason}");
                None
            } else {
                panic!("test fixture failed: {msg}");
            }
        }
    }
}

/// Unwraps a fixture result or skips the test (prints `skipped: ...` and returns). See the crate
/// docs.
#[macro_export]
macro_rules! require {
    ($fixture:expr) => {
        match $crate::skip_or_panic($fixture) {
            Some(v) => v,
            None => return,
        }
    };
    ($fixture:expr, $ret:expr) => {
        match $crate::skip_or_panic($fixture) {
            Some(v) => v,
            None => return $ret,
        }
    };
}

/// A name unique among the concurrently running test processes (pid + per-process counter), for
/// users and databases.
pub(crate) fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The process's effective uid, from /proc.
pub(crate) fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The first `binary` on `PATH`.
pub(crate) fn which(binary: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(binary))
        .find(|p| p.is_file())
}

/// Polls `cond` every 20 ms until it holds (true) or `timeout` passes (false).
pub(crate) fn wait_until(timeout: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Random lowercase alphanumerics from the kernel's CSPRNG (keeps the crate free of `rand`).
pub(crate) fn random_alnum(len: usize) -> std::io::Result<String> {
    use std::io::Read;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut buf = vec![0u8; len];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn skip_errors_become_none_outside_ci() {
        if super::in_ci() {
            return; // under CI the same input panics by design
        }
        assert_eq!(super::skip_or_panic::<u8>(super::skip("no sshd")), None);
        assert_eq!(super::skip_or_panic(Ok(3)), Some(3));
        let other =
            std::panic::catch_unwind(|| super::skip_or_panic::<u8>(Err(anyhow::anyhow!("boom"))));
        assert!(other.is_err());
    }
}
