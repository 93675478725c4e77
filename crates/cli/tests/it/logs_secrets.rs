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

/// Every process's command line on this machine (the target host's process list, as `ps`
/// shows it to any user).
fn all_command_lines() -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if e.file_name().to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        if let Ok(b) = std::fs::read(e.path().join("cmdline")) {
            out.push(String::from_utf8_lossy(&b).replace('\0', " "));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secret_template_parameter_is_in_no_log_output_stream_reply_or_process_list() {
    let host = require!(SshHost::start());
    let buf = Buf::default();
    let writer = buf.clone();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init();
    let stack = Stack::new().await;
    stack.add_server("h", &host).await;
    let secret = format!("tpl-s3cr3t-{}", &remora_domain::new_id()[24..]);
    let (st, t) = stack
        .post(
            "/api/v1/templates",
            json!({
                "name": "deploy",
                // The value is used by the job (printed, and handed to a child's environment)
                // while a child runs long enough to be seen in the process list.
                "command": "echo \"pw=$REMORA_PARAM_PW\"; sh -c 'sleep 3; echo \"child=$REMORA_PARAM_PW\"'",
                "params": [{"name": "pw", "type": "secret", "required": true}],
                "targets": {"servers": ["h"]}
            }),
        )
        .await;
    assert_eq!(st, 201, "{t}");
    let (st, job) = stack
        .post(
            "/api/v1/templates/deploy/run",
            json!({"params": {"pw": secret}}),
        )
        .await;
    assert_eq!(st, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let stream = {
        let r = stack
            .http
            .get(format!("{}/api/v1/jobs/{id}/stream", stack.url))
            .bearer_auth(&stack.token)
            .send()
            .await
            .unwrap();
        tokio::spawn(async move {
            use futures::StreamExt;
            let mut live = String::new();
            let mut ev = eventsource_stream::Eventsource::eventsource(r.bytes_stream());
            while let Some(Ok(e)) = ev.next().await {
                live.push_str(&e.data);
            }
            live
        })
    };
    // While the job's child sleeps: the process list has the job, but not the secret.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let user = host.user_processes();
        if user.iter().any(|(_, c)| c.contains("sleep 3")) {
            let leaked: Vec<String> = all_command_lines()
                .into_iter()
                .filter(|c| c.contains(&secret))
                .collect();
            assert!(
                leaked.is_empty(),
                "the secret is in the process list: {leaked:?}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job's child never showed up: {user:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let out = stack.get(&format!("/api/v1/jobs/{id}/logs")).await;
    assert_eq!(out["stdout"], "pw=***\nchild=***\n", "{out}");
    let live = tokio::time::timeout(Duration::from_secs(10), stream)
        .await
        .expect("the stream ends with the job")
        .unwrap();
    assert!(live.contains("pw=***"), "live output arrived: {live}");
    let logs = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    assert!(
        logs.len() > 10_000 && logs.contains(&id),
        "the API's and worker's logs are captured ({} bytes)",
        logs.len()
    );
    let today = remora_domain::time::ms_to_rfc3339(remora_domain::time::now_ms())[..10].to_string();
    let export = stack
        .http
        .get(format!("{}/api/v1/jobs/export?date={today}", stack.url))
        .bearer_auth(&stack.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(export.contains(&id), "the export has the job: {export}");
    for (what, text) in [
        ("the API's and worker's logs", logs),
        ("the export", export),
        ("stored output", out.to_string()),
        ("the live stream", live),
        ("the run reply", job.to_string()),
        ("the job", done.to_string()),
        ("the jobs list", stack.get("/api/v1/jobs").await.to_string()),
        (
            "the template",
            stack.get("/api/v1/templates/deploy").await.to_string(),
        ),
        (
            "the audit log",
            stack.get("/api/v1/audit").await.to_string(),
        ),
    ] {
        assert!(!text.contains(&secret), "{what} contains the secret");
    }
}
