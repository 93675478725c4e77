//! Login shells for the throwaway users ([`crate::sshd::SshHostOptions::login_shell`]): sshd runs
//! the exec string as `<login shell> -c STRING`, so every shell a real fleet has must be testable.
//!
//! [`LoginShell::ensure`] checks the shell is installed (missing → skip, or failure under
//! `CI=true`; `scripts/install-deps.sh` installs them all) and listed in `/etc/shells` (Dropbear
//! refuses users whose shell is not). BusyBox sh has no binary of its own: a wrapper
//! `/usr/local/libexec/remora-testkit/busybox-sh` (`exec /bin/busybox sh "$@"`) is created once.
//! `/etc/shells` is only ever appended to, under `flock` on `/run/lock/remora-testkit-shells.lock`
//! and only when the line is missing, so concurrent test processes never lose each other's lines
//! (nothing removes them: a listed shell that exists is harmless).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Where the BusyBox wrapper lives (root-owned, outside any package's files).
pub const BUSYBOX_SH_WRAPPER: &str = "/usr/local/libexec/remora-testkit/busybox-sh";
const SHELLS_LOCK: &str = "/run/lock/remora-testkit-shells.lock";
/// Appends `$1` unless listed; adds the missing final newline first, if any.
const SHELLS_APPEND: &str = r#"grep -qxF -- "$1" /etc/shells && exit 0
[ -z "$(tail -c1 /etc/shells)" ] || echo >> /etc/shells
printf '%s\n' "$1" >> /etc/shells"#;

/// A login shell for the test user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginShell {
    Bash,
    Dash,
    Zsh,
    /// ksh93 (Debian's `ksh`).
    Ksh,
    Fish,
    Tcsh,
    /// `busybox sh` (ash) through [`BUSYBOX_SH_WRAPPER`]. Only the shell is BusyBox; the tools are
    /// still GNU (see [`crate::busybox`] for a host where everything is BusyBox).
    BusyBoxSh,
}

impl LoginShell {
    /// Every shell, for table-driven tests.
    pub const ALL: [LoginShell; 7] = [
        LoginShell::Bash,
        LoginShell::Dash,
        LoginShell::Zsh,
        LoginShell::Ksh,
        LoginShell::Fish,
        LoginShell::Tcsh,
        LoginShell::BusyBoxSh,
    ];

    /// The path that goes into the user's passwd entry.
    pub fn path(self) -> &'static str {
        match self {
            LoginShell::Bash => "/bin/bash",
            LoginShell::Dash => "/bin/dash",
            LoginShell::Zsh => "/bin/zsh",
            LoginShell::Ksh => "/bin/ksh93",
            LoginShell::Fish => "/usr/bin/fish",
            LoginShell::Tcsh => "/bin/tcsh",
            LoginShell::BusyBoxSh => BUSYBOX_SH_WRAPPER,
        }
    }

    /// Short name, e.g. for test case labels: `bash`, `dash`, `zsh`, `ksh`, `fish`, `tcsh`,
    /// `busybox`.
    pub fn name(self) -> &'static str {
        match self {
            LoginShell::Bash => "bash",
            LoginShell::Dash => "dash",
            LoginShell::Zsh => "zsh",
            LoginShell::Ksh => "ksh",
            LoginShell::Fish => "fish",
            LoginShell::Tcsh => "tcsh",
            LoginShell::BusyBoxSh => "busybox",
        }
    }

    /// The Debian package that provides it.
    pub fn package(self) -> &'static str {
        match self {
            LoginShell::Bash => "bash",
            LoginShell::Dash => "dash",
            LoginShell::Zsh => "zsh",
            LoginShell::Ksh => "ksh",
            LoginShell::Fish => "fish",
            LoginShell::Tcsh => "tcsh",
            LoginShell::BusyBoxSh => "busybox-static",
        }
    }

    /// Makes the shell usable as a login shell (see the module docs). Needs root.
    pub fn ensure(self) -> Result<()> {
        let binary = match self {
            LoginShell::BusyBoxSh => "/bin/busybox",
            other => other.path(),
        };
        if !Path::new(binary).exists() {
            return crate::skip(format!(
                "{binary} not found: install {} (scripts/install-deps.sh)",
                self.package()
            ));
        }
        if self == LoginShell::BusyBoxSh {
            write_busybox_wrapper()?;
        }
        add_to_etc_shells(self.path())
    }
}

fn write_busybox_wrapper() -> Result<()> {
    const CONTENT: &str =
        "#!/bin/sh\n# remora-testkit: BusyBox ash as a login shell\nexec /bin/busybox sh \"$@\"\n";
    let path = Path::new(BUSYBOX_SH_WRAPPER);
    if fs::read_to_string(path).is_ok_and(|c| c == CONTENT) {
        return Ok(());
    }
    let dir = path.parent().context("wrapper dir")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Written under a unique name and renamed: a concurrent login never sees a partial file.
    let tmp = dir.join(format!(".busybox-sh.{}", crate::unique_suffix()));
    fs::write(&tmp, CONTENT)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
    fs::rename(&tmp, path).with_context(|| format!("installing {BUSYBOX_SH_WRAPPER}"))?;
    Ok(())
}

fn add_to_etc_shells(shell: &str) -> Result<()> {
    let listed = |text: &str| text.lines().any(|l| l.trim() == shell);
    if fs::read_to_string("/etc/shells").is_ok_and(|t| listed(&t)) {
        return Ok(());
    }
    // flock(1) rather than std's File::lock: the workspace's rust-version predates it.
    let out = Command::new("flock")
        .args(["-w", "60", SHELLS_LOCK, "/bin/sh", "-c"])
        .arg(SHELLS_APPEND)
        .args(["sh", shell])
        .output()
        .context("running flock (util-linux)")?;
    if !out.status.success() {
        bail!(
            "adding {shell} to /etc/shells failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
