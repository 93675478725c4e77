//! The detached cleanup process every fixture owns: it undoes what the fixture set up (kills
//! daemons, deletes users, unmounts, removes directories, deletes network namespaces) if the
//! test process dies without running `Drop`.
//!
//! The reaper is a `/bin/sh` loop in its own process group (so a group kill of the test does not
//! reach it) reading commands on stdin. A `done` line means the fixture cleaned up itself; stdin
//! closing without one (the test process died, or its own cleanup failed) makes the reaper clean
//! up, in this order: SIGKILL the pids, delete the users (after killing their processes),
//! unmount (lazily if busy, most recent first), delete the network namespaces, remove the
//! directories and files (`rm -rf --one-file-system`, so a mount that survived is never
//! descended into).
//!
//! Paths and names must not contain whitespace (the fixtures choose them: temp dirs, `rmt…`).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{Context, Result};

const SCRIPT: &str = r#"
pids=; users=; umounts=; dirs=; netns=
while read -r cmd arg; do
  case "$cmd" in
    pid) pids="$pids $arg" ;;
    nopid) new=; for p in $pids; do [ "$p" = "$arg" ] || new="$new $p"; done; pids=$new ;;
    user) users="$users $arg" ;;
    umount) umounts="$arg $umounts" ;;
    dir) dirs="$dirs $arg" ;;
    netns) netns="$netns $arg" ;;
    done) exit 0 ;;
  esac
done
for p in $pids; do kill -KILL "$p" 2>/dev/null; done
for user in $users; do
  for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    pkill -KILL -u "$user" 2>/dev/null
    userdel -r "$user" 2>/dev/null && break
    id -u "$user" >/dev/null 2>&1 || break
    sleep 0.5
  done
done
for m in $umounts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
for n in $netns; do ip netns del "$n" 2>/dev/null; done
for d in $dirs; do rm -rf --one-file-system "$d"; done
"#;

/// Handle on a running reaper. See the module docs.
pub(crate) struct Reaper {
    child: Child,
    stdin: ChildStdin,
}

impl Reaper {
    pub(crate) fn spawn() -> Result<Reaper> {
        let mut child = Command::new("/bin/sh")
            .args(["-c", SCRIPT, "remora-testkit-reaper"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("spawning cleanup reaper")?;
        let stdin = child.stdin.take().context("reaper stdin")?;
        Ok(Reaper { child, stdin })
    }

    /// Sends one command line (`pid N`, `nopid N`, `user U`, `umount P`, `dir P`, `netns N`).
    pub(crate) fn tell(&mut self, line: &str) {
        let _ = writeln!(self.stdin, "{line}");
    }

    /// The fixture cleaned up itself: the reaper exits without doing anything.
    pub(crate) fn done(mut self) {
        let _ = writeln!(self.stdin, "done");
        drop(self.stdin);
        let _ = self.child.wait();
    }

    /// The fixture's own cleanup failed: the reaper does it (and we wait for it).
    pub(crate) fn clean_up_now(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}
