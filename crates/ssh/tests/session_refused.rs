//! What a real OpenSSH sshd answers to a session past its MaxSessions: a
//! channel open failure with reason SSH_OPEN_CONNECT_FAILED ("no more
//! sessions" in its log), which is `SshError::Ssh`, not the
//! `SessionRefused` of an administrative refusal that the worker retries on
//! the same connection (it evicts a pooled connection instead).

use remora_ssh::{Connection, Credentials, SshConfig, SshError, Target};
use std::time::{Duration, Instant};

#[tokio::test]
async fn openssh_refuses_a_session_past_max_sessions_as_connect_failed() {
    let host = remora_testkit::require!(remora_testkit::sshd::SshHost::start());
    let max: usize = std::env::var("REMORA_TEST_SSHD_MAX_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let target = Target {
        host: host.host(),
        port: host.port(),
        user: host.user().to_string(),
        creds: Credentials {
            password: Some(host.password().to_string()),
            ..Default::default()
        },
        pinned: Some(host.host_key_fingerprint()),
        trusted_cas: Vec::new(),
        jumps: Vec::new(),
        server_id: None,
    };
    let conn = Connection::connect(&target, &SshConfig::default())
        .await
        .unwrap();
    // `cat` holds each session open until its stdin ends (the connection).
    let mut open = Vec::new();
    for i in 0..max {
        match conn.exec("cat").await {
            Ok(ch) => open.push(ch),
            Err(e) => panic!("session {i} of {max}: {e}"),
        }
    }
    match conn.exec("cat").await {
        Err(e @ SshError::Ssh(_)) => {
            assert_eq!(
                e.to_string(),
                "ssh error: Failed to open channel (ConnectFailed)"
            );
            assert_eq!(e.code().as_str(), "ssh_error");
        }
        Err(e) => panic!("session {} past MaxSessions: {e:?}", max + 1),
        Ok(_) => panic!("session {} past MaxSessions was opened", max + 1),
    }
    assert!(host.log().contains("no more sessions"), "{}", host.log());
    // A session freed makes room again (once sshd has processed the close).
    let ch = open.pop().unwrap();
    ch.close().await.unwrap();
    drop(ch);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match conn.exec("true").await {
            Ok(_) => break,
            Err(SshError::Ssh(_)) if Instant::now() < deadline => {
                conn.ping().await.unwrap();
            }
            Err(e) => panic!("after a close: {e}"),
        }
    }
    conn.disconnect().await;
}
