//! The sudo fixture: a rule with password, without, and no rule at all.

use std::io::Write;
use std::process::{Output, Stdio};

use remora_testkit::require;
use remora_testkit::sshd::{SshHost, SshHostOptions};
use remora_testkit::sudo::SudoRule;

/// `remote` over ssh with `stdin` fed to it (sudo -S reads the password there).
fn with_stdin(host: &SshHost, remote: &str, stdin: &str) -> Output {
    let mut cmd = host.ssh_command();
    cmd.arg(remote)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn sudo_with_password_without_and_none() {
    let with_pw = require!(SshHostOptions::new().sudo(SudoRule::Password).start());
    let no_pw = SshHostOptions::new()
        .sudo(SudoRule::NoPassword)
        .start()
        .unwrap();
    let none = SshHost::start().unwrap();
    let rule_file = std::path::Path::new("/etc/sudoers.d").join(with_pw.user());
    assert!(rule_file.exists());

    let pw = format!("{}\n", with_pw.password());
    let out = with_stdin(&with_pw, "sudo -S -p '' id -u", &pw);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n");
    // A password is really required, and a wrong one is refused.
    let out = with_stdin(&with_pw, "sudo -n id -u", "");
    assert!(!out.status.success(), "{out:?}");
    let out = with_stdin(&with_pw, "sudo -S -p '' id -u", "wrong\n");
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("incorrect password"),
        "{out:?}"
    );

    let out = with_stdin(&no_pw, "sudo -n id -u", "");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n");

    let out = with_stdin(
        &none,
        "sudo -S -p '' id -u",
        &format!("{}\n", none.password()),
    );
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not in the sudoers file"),
        "{out:?}"
    );

    drop(with_pw);
    assert!(!rule_file.exists(), "{} left behind", rule_file.display());
}
