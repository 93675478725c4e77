//! The PAM keyboard-interactive fixture: only the password by keyboard-interactive logs in.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use remora_testkit::require;
use remora_testkit::sshd::{SshHost, SshHostOptions};

use crate::common;

/// An `ssh` that answers every prompt through SSH_ASKPASS (forced: no terminal needed) with the
/// password in `REMORA_TEST_ASKPASS_PW`.
fn password_ssh(
    host: &SshHost,
    askpass: &std::path::Path,
    password: &str,
    method: &str,
) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.args(common::SSH_OPTS)
        .args([
            "-o",
            "BatchMode=no",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            &format!("PreferredAuthentications={method}"),
            "-o",
            "NumberOfPasswordPrompts=1",
            "-p",
            &host.port().to_string(),
        ])
        .arg(format!("{}@{}", host.user(), host.host()))
        .arg("id -un")
        .env("SSH_ASKPASS", askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("REMORA_TEST_ASKPASS_PW", password)
        .env_remove("DISPLAY")
        .stdin(Stdio::null());
    cmd
}

#[test]
fn pam_accepts_the_password_by_keyboard_interactive_only() {
    let host = require!(SshHostOptions::new().pam_keyboard_interactive().start());
    let askpass = host.dir().join("askpass");
    std::fs::write(
        &askpass,
        "#!/bin/sh\nprintf '%s\\n' \"$REMORA_TEST_ASKPASS_PW\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();

    let out = common::ok(
        &host,
        password_ssh(&host, &askpass, host.password(), "keyboard-interactive"),
    );
    assert_eq!(out.trim(), host.user());
    assert!(
        host.log().contains("Accepted keyboard-interactive/pam"),
        "{}",
        host.log()
    );

    // The password method is off, and a wrong password is refused.
    let out = common::output(password_ssh(&host, &askpass, host.password(), "password"));
    assert!(!out.status.success());
    let out = common::output(password_ssh(
        &host,
        &askpass,
        "wrong-password",
        "keyboard-interactive",
    ));
    assert!(!out.status.success());
    // Keys still work (the fixture changes passwords only).
    assert_eq!(common::run(&host, "id -un").trim(), host.user());
}
