//! A Dropbear SSH server (`dropbear-bin`) as a test target: [`start`], or
//! [`crate::sshd::SshHostOptions::dropbear`] to combine it with a login shell or a network
//! namespace.
//!
//! It is an ordinary [`SshHost`] (same throwaway user, password, keys, `ssh_command`,
//! `user_processes`, stop/kill/restart, reaper and `Drop` cleanup); only the daemon differs:
//! `dropbear -F -E -w -r HOSTKEY -p IP:PORT -P PIDFILE` (foreground, log to stderr, no root
//! logins). The host key is made by `ssh-keygen` and converted with `dropbearconvert`, so
//! [`SshHost::host_key_fingerprint`] and [`SshHost::known_hosts_line`] are the same as for
//! OpenSSH. What real Dropbear hosts do differently shows here too: the per-connection parent
//! process stays root (a user's `kill -0 $PPID` fails with EPERM), and users whose login shell is
//! not in `/etc/shells` are refused.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::sshd::{SshHost, SshHostOptions};

pub(crate) const DROPBEAR: &str = "/usr/sbin/dropbear";
const DROPBEARCONVERT: &str = "/usr/bin/dropbearconvert";

/// Starts a Dropbear server on 127.0.0.1 and a free port, with a fresh user (login shell bash).
pub fn start() -> Result<SshHost> {
    SshHostOptions::new().dropbear().start()
}

pub(crate) fn check_prerequisites() -> Result<()> {
    for binary in [DROPBEAR, DROPBEARCONVERT] {
        if !Path::new(binary).exists() {
            return crate::skip(format!(
                "{binary} not found: install dropbear-bin (scripts/install-deps.sh)"
            ));
        }
    }
    Ok(())
}

/// Converts the OpenSSH host key at `openssh_key` to Dropbear's format at `out`.
pub(crate) fn convert_host_key(openssh_key: &Path, out: &Path) -> Result<()> {
    let _ = std::fs::remove_file(out);
    let output = Command::new(DROPBEARCONVERT)
        .args(["openssh", "dropbear"])
        .arg(openssh_key)
        .arg(out)
        .stdin(Stdio::null())
        .output()
        .context("running dropbearconvert")?;
    if !output.status.success() {
        bail!(
            "dropbearconvert failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// The daemon's command line; it logs "Not backgrounding" once it listens.
pub(crate) fn command(host_key: &Path, ip: &str, port: u16, pid_file: &Path) -> Command {
    let mut cmd = Command::new(DROPBEAR);
    cmd.args(["-F", "-E", "-w", "-r"])
        .arg(host_key)
        .arg("-p")
        .arg(format!("{ip}:{port}"))
        .arg("-P")
        .arg(pid_file);
    cmd
}

/// Log line that means the daemon listens.
pub(crate) const READY_LINE: &str = "Not backgrounding";
