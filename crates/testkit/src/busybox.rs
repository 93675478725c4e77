//! A BusyBox-only host ([`crate::sshd::SshHostOptions::busybox_chroot`]): every tool the user's
//! session sees is a BusyBox applet, as on Alpine-like and embedded systems.
//!
//! sshd (OpenSSH) authenticates as usual, then runs the session in `ChrootDirectory R`, where
//! `R` is a root-owned tree built per host:
//! `R/bin/busybox` (a copy of busybox-static's `/bin/busybox`) and its applets as symlinks in
//! `R/bin` (`busybox --install -s`), `R/proc` (a bind mount of `/proc`, so `ps`, `kill -0` and
//! `/proc/self` work), `R/dev/{null,zero,urandom}`, `R/etc/passwd` and `R/etc/group` with the
//! user, `R/tmp` (1777) and the user's home `R/home/<user>`. The user's login shell is `/bin/sh`,
//! which inside `R` is BusyBox ash.
//!
//! `R` lives under `/run/remora-testkit/chroot/` because sshd requires every component of the
//! chroot path to be root-owned and not group/world-writable (`/tmp` is not). Dropping the host
//! unmounts `R/proc` and removes `R`; the reaper does the same (unmount first, then
//! `rm -rf --one-file-system`) if the test process dies.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::reaper::Reaper;

const BUSYBOX: &str = "/bin/busybox";
const CHROOT_BASE: &str = "/run/remora-testkit/chroot";

/// The chroot tree of a BusyBox host. Owned by its [`crate::sshd::SshHost`].
#[derive(Debug)]
pub(crate) struct Chroot {
    root: PathBuf,
    proc_mounted: bool,
}

impl Chroot {
    pub(crate) fn check_prerequisites() -> Result<()> {
        if !Path::new(BUSYBOX).exists() {
            return crate::skip(format!(
                "{BUSYBOX} not found: install busybox-static (scripts/install-deps.sh)"
            ));
        }
        Ok(())
    }

    /// Builds the tree for `user` (`uid`, `gid`); `reaper` learns what to undo before it is done.
    pub(crate) fn build(user: &str, uid: u32, gid: u32, reaper: &mut Reaper) -> Result<Chroot> {
        for dir in ["/run/remora-testkit", CHROOT_BASE] {
            create_root_dir(Path::new(dir), 0o755)?;
        }
        let root = Path::new(CHROOT_BASE).join(user);
        // A leftover of a crashed run with a recycled name would be root-owned and ours.
        let _ = fs::remove_dir_all(&root);
        reaper.tell(&format!("dir {}", root.display()));
        reaper.tell(&format!("umount {}/proc", root.display()));
        let mut chroot = Chroot {
            root,
            proc_mounted: false,
        };
        if let Err(e) = chroot.populate(user, uid, gid) {
            let _ = chroot.remove();
            return Err(e);
        }
        Ok(chroot)
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn populate(&mut self, user: &str, uid: u32, gid: u32) -> Result<()> {
        let r = self.root.clone();
        create_root_dir(&r, 0o755)?;
        for d in ["bin", "etc", "dev", "proc", "home"] {
            create_root_dir(&r.join(d), 0o755)?;
        }
        create_root_dir(&r.join("tmp"), 0o1777)?;
        let bin = r.join("bin/busybox");
        fs::copy(BUSYBOX, &bin).context("copying /bin/busybox")?;
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755))?;
        // A dynamically linked busybox (Debian's `busybox` package) cannot run in the tree.
        let out = Command::new("chroot")
            .arg(&r)
            .args(["/bin/busybox", "--install", "-s", "/bin"])
            .stdin(Stdio::null())
            .output()
            .context("running chroot")?;
        if !out.status.success() {
            bail!(
                "installing BusyBox applets in {} failed (is /bin/busybox from busybox-static?): {}",
                r.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        for (name, minor) in [("null", 3), ("zero", 5), ("urandom", 9)] {
            let node = r.join("dev").join(name);
            run(Command::new("mknod").args(["-m", "666"]).arg(&node).args([
                "c",
                "1",
                &minor.to_string(),
            ]))?;
        }
        fs::write(
            r.join("etc/passwd"),
            format!("root:x:0:0:root:/root:/bin/sh\n{user}:x:{uid}:{gid}::/home/{user}:/bin/sh\n"),
        )?;
        fs::write(r.join("etc/group"), format!("root:x:0:\n{user}:x:{gid}:\n"))?;
        let home = r.join("home").join(user);
        fs::create_dir(&home)?;
        fs::set_permissions(&home, fs::Permissions::from_mode(0o700))?;
        std::os::unix::fs::chown(&home, Some(uid), Some(gid))?;
        run(Command::new("mount")
            .args(["--bind", "/proc"])
            .arg(r.join("proc")))?;
        self.proc_mounted = true;
        Ok(())
    }

    /// Unmounts `R/proc` and removes `R`. Call after the user's processes are gone.
    pub(crate) fn remove(&mut self) -> Result<()> {
        let proc_dir = self.root.join("proc");
        if self.proc_mounted {
            let unmounted = crate::wait_until(Duration::from_secs(5), || {
                Command::new("umount")
                    .arg(&proc_dir)
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
                    || !is_mount_point(&proc_dir)
            });
            if !unmounted {
                run(Command::new("umount").arg("-l").arg(&proc_dir))
                    .context("lazy unmount of the chroot's /proc")?;
            }
            self.proc_mounted = false;
        }
        if is_mount_point(&proc_dir) {
            bail!(
                "{} is still mounted; not removing the chroot",
                proc_dir.display()
            );
        }
        run(Command::new("rm")
            .args(["-rf", "--one-file-system"])
            .arg(&self.root))?;
        Ok(())
    }
}

/// True when `path` is listed as a mount point in this process's mount table.
pub(crate) fn is_mount_point(path: &Path) -> bool {
    let Ok(table) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let target = path.to_string_lossy();
    table
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(target.as_ref()))
}

fn create_root_dir(path: &Path, mode: u32) -> Result<()> {
    match fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    std::os::unix::fs::chown(path, Some(0), Some(0))?;
    Ok(())
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
