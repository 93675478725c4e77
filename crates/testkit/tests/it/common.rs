//! Helpers shared by the fixture tests: run the system `ssh` client and check its result.

use std::process::{Command, Output};

use remora_testkit::sshd::SshHost;

/// Runs `cmd`; panics with ssh's stderr and the server log unless it succeeded. Returns stdout.
pub fn ok(host: &SshHost, mut cmd: Command) -> String {
    let out = cmd.output().expect("running ssh");
    assert!(
        out.status.success(),
        "ssh failed ({}): {}\nstdout: {}\nserver log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
        host.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ok` of `host.ssh_command()` with `remote` as the command.
pub fn run(host: &SshHost, remote: &str) -> String {
    let mut cmd = host.ssh_command();
    cmd.arg(remote);
    ok(host, cmd)
}

/// Runs `cmd` and returns its output, success or not.
pub fn output(mut cmd: Command) -> Output {
    cmd.output().expect("running ssh")
}

pub fn user_exists(name: &str) -> bool {
    Command::new("id")
        .args(["-u", name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Options for an `ssh` client with host key checking off and no agent or config.
pub const SSH_OPTS: [&str; 12] = [
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "ConnectTimeout=10",
    "-F",
    "/dev/null",
];
