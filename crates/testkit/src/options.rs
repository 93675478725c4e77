//! [`SshHostOptions`]: the one builder for every kind of [`SshHost`] beyond the default
//! (`SshHost::start()`): another login shell, Dropbear instead of OpenSSH, a BusyBox-only chroot,
//! a network namespace, host and user certificates, PAM keyboard-interactive, sudo rights, extra
//! sshd_config lines.
//!
//! ```no_run
//! use remora_testkit::{certs::{Ca, Validity}, shells::LoginShell, sshd::SshHostOptions};
//!
//! let ca = Ca::new().unwrap();
//! let host = SshHostOptions::new()
//!     .login_shell(LoginShell::Fish)
//!     .host_certificate(&ca, &["127.0.0.1"], Validity::Valid)
//!     .start()
//!     .unwrap();
//! ```
//!
//! Options that only exist in OpenSSH's sshd (PAM, certificates, chroot, extra config lines) are
//! refused with a clear error together with [`SshHostOptions::dropbear`].

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::certs::{Ca, Validity};
use crate::netns::Node;
use crate::shells::LoginShell;
use crate::sshd::SshHost;
use crate::sudo::SudoRule;

/// Which SSH server the host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerKind {
    /// OpenSSH's `/usr/sbin/sshd` (the default).
    #[default]
    OpenSsh,
    /// Dropbear (`dropbear-bin`): see [`crate::dropbear`].
    Dropbear,
}

/// A host certificate to sign over the host's key at start (and again after
/// [`SshHost::regenerate_host_key`]; the CA's files must still exist then).
#[derive(Debug, Clone)]
pub(crate) struct HostCertSpec {
    pub(crate) ca_key: PathBuf,
    pub(crate) principals: Vec<String>,
    pub(crate) validity: Validity,
}

/// Where in a network namespace the host runs: sshd is started with `ip netns exec NS`, listening
/// on `ip:22`.
#[derive(Debug, Clone)]
pub(crate) struct NetnsPlacement {
    pub(crate) netns: String,
    pub(crate) ip: String,
}

/// Builder for an [`SshHost`]. See the module docs. `SshHostOptions::new().start()` is exactly
/// `SshHost::start()`.
#[derive(Debug, Clone, Default)]
pub struct SshHostOptions {
    pub(crate) ip: Option<String>,
    pub(crate) server: ServerKind,
    pub(crate) login_shell: Option<LoginShell>,
    /// sshd_config lines written before the testkit's defaults (sshd takes the first value of a
    /// keyword, so these override them).
    pub(crate) config_lines: Vec<String>,
    pub(crate) pam: bool,
    pub(crate) host_cert: Option<HostCertSpec>,
    pub(crate) trusted_user_ca: Option<String>,
    pub(crate) busybox_chroot: bool,
    pub(crate) netns: Option<NetnsPlacement>,
    pub(crate) sudo: Option<SudoRule>,
}

impl SshHostOptions {
    pub fn new() -> SshHostOptions {
        SshHostOptions::default()
    }

    /// Listen address (default `127.0.0.1`; any 127.x.y.z binds without setup). Ignored with
    /// [`SshHostOptions::in_netns`], which listens on the node's address.
    pub fn ip(mut self, ip: &str) -> Self {
        self.ip = Some(ip.to_string());
        self
    }

    /// The throwaway user's login shell (default bash). Missing shells are a skip (a failure
    /// under `CI=true`); see [`crate::shells`].
    pub fn login_shell(mut self, shell: LoginShell) -> Self {
        self.login_shell = Some(shell);
        self
    }

    /// Run Dropbear instead of OpenSSH. See [`crate::dropbear`].
    pub fn dropbear(mut self) -> Self {
        self.server = ServerKind::Dropbear;
        self
    }

    /// An extra sshd_config line (e.g. `"MaxSessions 2"`), placed before the defaults so it
    /// overrides them. `Match` blocks are not supported (they would swallow the defaults).
    pub fn config_line(mut self, line: &str) -> Self {
        self.config_lines.push(line.to_string());
        self
    }

    /// `UsePAM yes`, `KbdInteractiveAuthentication yes`, `PasswordAuthentication no`: the user's
    /// password is accepted by keyboard-interactive only (through Debian's `/etc/pam.d/sshd`).
    pub fn pam_keyboard_interactive(mut self) -> Self {
        self.pam = true;
        self
    }

    /// Sign the host key with `ca` for `principals` (the names clients connect to, e.g. the IP)
    /// and serve the certificate (`HostCertificate`). `ca` must outlive the host.
    pub fn host_certificate(mut self, ca: &Ca, principals: &[&str], validity: Validity) -> Self {
        self.host_cert = Some(HostCertSpec {
            ca_key: ca.private_key_path().to_path_buf(),
            principals: principals.iter().map(|p| p.to_string()).collect(),
            validity,
        });
        self
    }

    /// Trust user certificates signed by `ca` (`TrustedUserCAKeys`); see
    /// [`SshHost::user_certificate`].
    pub fn trusted_user_ca(mut self, ca: &Ca) -> Self {
        self.trusted_user_ca = Some(ca.public_key().to_string());
        self
    }

    /// A BusyBox-only host: the user's session runs chrooted in a tree whose every tool is a
    /// BusyBox applet. See [`crate::busybox`].
    pub fn busybox_chroot(mut self) -> Self {
        self.busybox_chroot = true;
        self
    }

    /// Run the server inside a network namespace node of a [`crate::netns::NetLab`], listening
    /// on the node's address, port 22.
    pub fn in_netns(mut self, node: &Node) -> Self {
        self.netns = Some(NetnsPlacement {
            netns: node.netns().to_string(),
            ip: node.ip().to_string(),
        });
        self
    }

    /// Give the user sudo rights ([`crate::sudo`]); without this it is in no sudoers rule.
    pub fn sudo(mut self, rule: SudoRule) -> Self {
        self.sudo = Some(rule);
        self
    }

    /// Starts the host; see [`SshHost::start_on`] for what it owns and how it cleans up.
    pub fn start(self) -> Result<SshHost> {
        self.validate()?;
        SshHost::start_with(self)
    }

    fn validate(&self) -> Result<()> {
        if self.server == ServerKind::Dropbear {
            let unsupported = [
                (self.pam, "PAM keyboard-interactive"),
                (self.host_cert.is_some(), "host certificates"),
                (self.trusted_user_ca.is_some(), "user certificates"),
                (self.busybox_chroot, "a BusyBox chroot"),
                (!self.config_lines.is_empty(), "sshd_config lines"),
            ];
            if let Some((_, what)) = unsupported.iter().find(|(on, _)| *on) {
                bail!("the Dropbear fixture does not support {what} (OpenSSH only)");
            }
        }
        if self.busybox_chroot && self.sudo.is_some() {
            bail!("a BusyBox chroot host has no sudo inside the chroot");
        }
        if self.busybox_chroot && self.login_shell.is_some() {
            bail!("a BusyBox chroot host's login shell is always its /bin/sh (busybox ash)");
        }
        if let Some(line) = self.config_lines.iter().find(|l| {
            l.contains('\n')
                || l.trim_start()
                    .get(..5)
                    .is_some_and(|k| k.eq_ignore_ascii_case("match"))
        }) {
            bail!("sshd_config line {line:?}: one line without Match, please");
        }
        Ok(())
    }
}
