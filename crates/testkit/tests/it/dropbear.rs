//! The Dropbear fixture: a real Dropbear server with a throwaway user, cleaned up like SshHost.

use std::time::Duration;

use remora_testkit::require;
use remora_testkit::shells::LoginShell;
use remora_testkit::sshd::{ServerKind, SshHostOptions};

use crate::common;

#[test]
fn dropbear_runs_commands_and_cleans_up() {
    let host = require!(remora_testkit::dropbear::start());
    assert_eq!(host.server_kind(), ServerKind::Dropbear);
    assert_eq!(
        common::run(&host, "echo hi; id -un"),
        format!("hi\n{}\n", host.user())
    );
    // It is Dropbear answering, with the host key the fixture reports.
    let banner = {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(host.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(banner.starts_with("SSH-2.0-dropbear"), "{banner}");
    let keyscan = std::process::Command::new("ssh-keyscan")
        .args([
            "-t",
            "ed25519",
            "-p",
            &host.port().to_string(),
            &host.host(),
        ])
        .output()
        .unwrap();
    let scanned = String::from_utf8_lossy(&keyscan.stdout);
    let ours = host.host_public_key().unwrap();
    let blob = ours.split_whitespace().nth(1).unwrap();
    assert!(scanned.contains(blob), "{scanned} vs {ours}");

    // The property issue 11's watchdog must live with: the session's parent is root.
    let out = common::run(&host, "kill -0 $PPID 2>/dev/null; echo rc=$?");
    assert_ne!(out.trim(), "rc=0", "kill -0 $PPID succeeded on Dropbear");
    // Two ssh logins, the banner read and ssh-keyscan.
    assert_eq!(host.connection_count(), 4, "{}", host.log());

    // Processes left running are seen, and drop kills them and removes the user.
    common::run(&host, "nohup sleep 300 >/dev/null 2>&1 &");
    let mut host = host;
    assert!(!host.wait_no_user_processes(Duration::from_millis(200)));
    let (user, pid) = (host.user().to_string(), host.pid().unwrap());
    host.stop().unwrap();
    assert!(std::net::TcpStream::connect(host.addr()).is_err());
    host.restart().unwrap();
    common::run(&host, "true");
    let pid2 = host.pid().unwrap();
    assert_ne!(pid, pid2);
    drop(host);
    assert!(!common::user_exists(&user));
    let stat = std::fs::read_to_string(format!("/proc/{pid2}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "dropbear survived: {stat}"
    );
}

#[test]
fn dropbear_with_fish_login_shell() {
    let host = require!(SshHostOptions::new()
        .dropbear()
        .login_shell(LoginShell::Fish)
        .start());
    assert_eq!(common::run(&host, "echo (echo fish)"), "fish\n");
}

#[test]
fn dropbear_refuses_openssh_only_options() {
    let err = SshHostOptions::new()
        .dropbear()
        .pam_keyboard_interactive()
        .start()
        .unwrap_err();
    assert!(format!("{err}").contains("Dropbear"), "{err}");
}
