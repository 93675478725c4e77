//! End-to-end tests of the SSH client against real sshd fixtures: jump
//! chains through network namespaces, keyboard-interactive over PAM, host
//! and user certificates.

mod certs;
mod jump;
mod kbd;
mod kdf;
mod limits;

use remora_ssh::{Connection, Credentials, SshConfig, Target};
use remora_testkit::sshd::SshHost;
use std::time::Duration;

/// The fixture's user with its key, the host key pinned.
pub fn target(h: &SshHost) -> Target {
    Target {
        host: h.host(),
        port: h.port(),
        user: h.user().to_string(),
        creds: Credentials {
            private_key: Some(h.private_key().to_string()),
            ..Default::default()
        },
        pinned: Some(h.host_key_fingerprint()),
        trusted_cas: Vec::new(),
        jumps: Vec::new(),
        server_id: None,
    }
}

pub fn cfg() -> SshConfig {
    SshConfig {
        connect_timeout: Duration::from_secs(15),
        ..Default::default()
    }
}

/// `id -un` on a connection.
pub async fn whoami(c: &Connection) -> String {
    let out = c.run("id -un", Duration::from_secs(15)).await.unwrap();
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
