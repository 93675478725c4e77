//! Users with each login shell on OpenSSH: the exec string really runs in that shell.

use remora_testkit::require;
use remora_testkit::shells::{LoginShell, BUSYBOX_SH_WRAPPER};
use remora_testkit::sshd::{SshHost, SshHostOptions};

use crate::common;

/// The name the kernel gives the shell process (`/proc/PID/comm`).
fn comm(shell: LoginShell) -> &'static str {
    match shell {
        LoginShell::Ksh => "ksh93",
        LoginShell::BusyBoxSh => "busybox",
        other => other.name(),
    }
}

#[test]
fn every_login_shell_runs_the_exec_string() {
    let hosts: Vec<(LoginShell, anyhow::Result<SshHost>)> = std::thread::scope(|s| {
        let handles: Vec<_> = LoginShell::ALL
            .iter()
            .enumerate()
            .map(|(i, &shell)| {
                s.spawn(move || {
                    let host = SshHostOptions::new()
                        .ip(&format!("127.0.5.{}", i + 1))
                        .login_shell(shell)
                        .start();
                    (shell, host)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let etc_shells = std::fs::read_to_string("/etc/shells").unwrap();
    for (shell, host) in hosts {
        let host = require!(host);
        let passwd = std::process::Command::new("getent")
            .args(["passwd", host.user()])
            .output()
            .unwrap();
        let passwd = String::from_utf8_lossy(&passwd.stdout);
        assert_eq!(
            passwd.trim().rsplit(':').next(),
            Some(shell.path()),
            "{passwd}"
        );
        assert!(
            etc_shells.lines().any(|l| l == shell.path()),
            "{} not in /etc/shells",
            shell.path()
        );
        // `$$` is the shell running the exec string (a compound command, so not exec'd away);
        // fish has no `$$`.
        let pid = if shell == LoginShell::Fish {
            "$fish_pid"
        } else {
            "$$"
        };
        let out = common::run(&host, &format!("cat /proc/{pid}/comm; echo done"));
        assert_eq!(out, format!("{}\ndone\n", comm(shell)), "{shell:?}");
    }
    let wrapper = std::fs::read_to_string(BUSYBOX_SH_WRAPPER).unwrap();
    assert!(wrapper.contains("exec /bin/busybox sh \"$@\""), "{wrapper}");
}

/// The quirks the product must cope with are real here (see issue 11): fish reads `(…)` as a
/// command substitution, tcsh expands `!` even inside single quotes.
#[test]
fn fish_and_tcsh_quirks_are_visible() {
    let fish = require!(SshHostOptions::new().login_shell(LoginShell::Fish).start());
    assert_eq!(
        common::run(&fish, "echo (echo substituted)"),
        "substituted\n"
    );
    let tcsh = require!(SshHostOptions::new().login_shell(LoginShell::Tcsh).start());
    let out = common::output({
        let mut c = tcsh.ssh_command();
        c.arg("echo 'a!x'");
        c
    });
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Event not found"),
        "{out:?}"
    );
}

#[test]
fn etc_shells_survives_concurrent_appends() {
    // Seven threads ensure the same shells at once: each line ends up exactly once.
    require!(SshHost::start()); // root/sshd check only
    let count = |text: &str, shell: LoginShell| text.lines().filter(|l| *l == shell.path()).count();
    let before = std::fs::read_to_string("/etc/shells").unwrap();
    std::thread::scope(|s| {
        for _ in 0..7 {
            s.spawn(|| {
                for shell in LoginShell::ALL {
                    remora_testkit::skip_or_panic(shell.ensure());
                }
            });
        }
    });
    let text = std::fs::read_to_string("/etc/shells").unwrap();
    for shell in LoginShell::ALL {
        // Once, or as often as it already was (the system may list a shell twice).
        let n = count(&text, shell);
        assert_eq!(n, count(&before, shell).max(1), "{}:\n{text}", shell.path());
    }
    // Nothing else was lost.
    for line in before.lines() {
        assert!(text.lines().any(|l| l == line), "{line} vanished");
    }
}
