//! Secrets never reach a log line, at any level: the whole stack runs with
//! every target at TRACE into a buffer while servers with a password, a key
//! and a passphrase-protected uploaded key are created, tested and used.

use crate::stack::Stack;
use remora_testkit::require;
use remora_testkit::sshd::{KeyKind, SshHost};
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_in_any_log_line_at_trace_level() {
    let mut host = require!(SshHost::start());
    let buf = Buf::default();
    let writer = buf.clone();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init();
    let stack = Stack::new().await;
    let passphrase = "correct horse battery";
    let encrypted = host
        .add_key(KeyKind::Ed25519, Some(passphrase), false)
        .unwrap();
    let (st, v) = stack.post("/api/v1/servers", json!({ "name": "pw", "hostname": host.host(), "port": host.port(), "user": host.user(), "password": host.password() })).await;
    assert_eq!(st, 201, "{v}");
    stack.add_server("key", &host).await;
    let (st, v) = stack.post("/api/v1/servers", json!({ "name": "enc", "hostname": host.host(), "port": host.port(), "user": host.user(), "private_key": encrypted, "passphrase": passphrase })).await;
    assert_eq!(st, 201, "{v}");
    for name in ["pw", "key", "enc"] {
        let (_, t) = stack
            .post(&format!("/api/v1/servers/{name}/test"), json!(null))
            .await;
        assert_eq!(t["ok"], true, "{t}");
        let id = stack.submit(name, "echo ok").await;
        assert_eq!(
            stack.wait_final(&id, Duration::from_secs(30)).await["status"],
            "completed"
        );
    }
    let logs = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    assert!(
        logs.len() > 10_000,
        "the test must really capture the logs ({} bytes)",
        logs.len()
    );
    assert!(logs.contains("server created"), "API logs captured");
    let key_line = |k: &str| {
        k.lines()
            .find(|l| !l.starts_with("-----") && l.len() > 40)
            .unwrap()
            .to_string()
    };
    for (what, secret) in [
        ("password", host.password().to_string()),
        ("private key", key_line(host.private_key())),
        ("encrypted key", key_line(&encrypted)),
        ("passphrase", passphrase.to_string()),
    ] {
        assert!(!logs.contains(&secret), "the {what} appears in the logs");
    }
}
