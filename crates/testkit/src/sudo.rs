//! sudo rights for the throwaway user ([`crate::sshd::SshHostOptions::sudo`]), for "become" tests:
//! a rule in `/etc/sudoers.d/<user>` (`<user> ALL=(ALL:ALL) ALL`, or `NOPASSWD: ALL`), checked
//! with `visudo -cf` before it is installed. Without the option the user is in no sudoers rule
//! (sudo answers "… is not in the sudoers file").
//!
//! The password sudo asks for is the user's own ([`crate::sshd::SshHost::password`]); `sudo -S`
//! reads it from stdin. Debian's defaults apply otherwise (3 tries, the lecture on first use,
//! credentials cached per terminal — a session without a terminal caches nothing). The rule file
//! is removed before the user is deleted, by `Drop` or by the reaper.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::reaper::Reaper;

const SUDO: &str = "/usr/bin/sudo";
const SUDOERS_D: &str = "/etc/sudoers.d";

/// What the user may do with sudo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SudoRule {
    /// Anything, as any user, after typing its own password.
    Password,
    /// Anything, as any user, without a password.
    NoPassword,
}

pub(crate) fn check_prerequisites() -> Result<()> {
    if !Path::new(SUDO).exists() || !Path::new(SUDOERS_D).is_dir() {
        return crate::skip(format!(
            "{SUDO} or {SUDOERS_D} not found: install sudo (scripts/install-deps.sh)"
        ));
    }
    Ok(())
}

/// Installs the rule for `user`; returns the file to remove.
pub(crate) fn install(user: &str, rule: SudoRule, reaper: &mut Reaper) -> Result<PathBuf> {
    let line = match rule {
        SudoRule::Password => format!("{user} ALL=(ALL:ALL) ALL\n"),
        SudoRule::NoPassword => format!("{user} ALL=(ALL:ALL) NOPASSWD: ALL\n"),
    };
    // sudo ignores names with a dot in sudoers.d, so the temp name has one until it is checked.
    let path = Path::new(SUDOERS_D).join(user);
    let tmp = Path::new(SUDOERS_D).join(format!("{user}.tmp"));
    reaper.tell(&format!("dir {}", path.display()));
    reaper.tell(&format!("dir {}", tmp.display()));
    fs::write(&tmp, line).with_context(|| format!("writing {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o440))?;
    let out = Command::new("visudo")
        .arg("-cf")
        .arg(&tmp)
        .stdin(Stdio::null())
        .output()
        .context("running visudo")?;
    if !out.status.success() {
        let _ = fs::remove_file(&tmp);
        bail!(
            "visudo rejected the rule: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    fs::rename(&tmp, &path).with_context(|| format!("installing {}", path.display()))?;
    Ok(path)
}

pub(crate) fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}
