use crate::stack::Stack;
use remora_testkit::require;
use remora_testkit::sshd::SshHost;
use serde_json::json;
use std::time::{Duration, Instant};

async fn cancel_leaves_nothing(command: &str) {
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    let sid = stack.add_server("h", &host).await;
    let id = stack.submit(&sid, command).await;
    stack
        .wait_job(&id, Duration::from_secs(20), |j| j["status"] == "running")
        .await;
    // Wait until the remote command really runs before canceling.
    let start = Instant::now();
    while !host
        .user_processes()
        .iter()
        .any(|(_, c)| c.contains("sleep 1000"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the command never started: {:?}",
            host.user_processes()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (st, v) = stack
        .post(&format!("/api/v1/jobs/{id}/cancel"), json!(null))
        .await;
    assert_eq!(st, 202, "{v}");
    let asked = Instant::now();
    let job = stack.wait_final(&id, Duration::from_secs(10)).await;
    assert_eq!(job["status"], "canceled", "{job}");
    assert!(
        host.wait_no_user_processes(Duration::from_secs(3).saturating_sub(asked.elapsed())),
        "left on the host: {:?}",
        host.user_processes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_kills_a_plain_command() {
    cancel_leaves_nothing("sleep 1000").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_kills_background_children() {
    cancel_leaves_nothing("bash -c 'sleep 1000 & sleep 1000 & wait'").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_kills_setsid_children() {
    cancel_leaves_nothing("setsid sleep 1000 & sleep 1000; wait").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timeout_kills_and_reports_timed_out() {
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    let sid = stack.add_server("h", &host).await;
    let (st, v) = stack
        .post(
            "/api/v1/jobs",
            json!({ "server_id": sid, "command": "sleep 1000", "timeout": 2 }),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let id = v["id"].as_str().unwrap();
    let job = stack
        .wait_job(id, Duration::from_secs(30), |j| j["status"] == "running")
        .await;
    assert_eq!(job["status"], "running");
    let start = Instant::now();
    let job = stack.wait_final(id, Duration::from_secs(10)).await;
    assert_eq!(job["status"], "timed_out", "{job}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        host.wait_no_user_processes(Duration::from_secs(3)),
        "left on the host: {:?}",
        host.user_processes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changed_host_key_fails_with_host_key_mismatch() {
    let mut host = require!(SshHost::start());
    let stack = Stack::new().await;
    let sid = stack.add_server("h", &host).await;
    let id = stack.submit(&sid, "true").await;
    assert_eq!(
        stack.wait_final(&id, Duration::from_secs(30)).await["status"],
        "completed"
    );
    // A reinstalled host: new key, and the pooled connection (verified
    // against the old key) is gone with the old sessions.
    host.regenerate_host_key().unwrap();
    crate::worker_more::kill_sshd_sessions(&host);
    let id = stack.submit(&sid, "echo should-not-run").await;
    let job = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error_code"], "host_key_mismatch", "{job}");
    let logs = stack.get(&format!("/api/v1/jobs/{id}/logs")).await;
    assert_eq!(logs["stdout"], "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multi_server_submit_creates_a_batch() {
    let h1 = require!(SshHost::start());
    let h2 = require!(SshHost::start_on("127.0.1.2"));
    let stack = Stack::new().await;
    stack.add_server("a", &h1).await;
    stack.add_server("b", &h2).await;
    let (st, v) = stack
        .post(
            "/api/v1/jobs",
            json!({ "server_ids": ["a", "b"], "command": "whoami" }),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let batch = v["batch_id"].as_str().unwrap().to_string();
    let jobs = v["jobs"].as_array().unwrap().clone();
    assert_eq!(jobs.len(), 2);
    let mut outs = Vec::new();
    for j in &jobs {
        let id = j["id"].as_str().unwrap();
        assert_eq!(
            stack.wait_final(id, Duration::from_secs(30)).await["status"],
            "completed"
        );
        outs.push(
            stack.get(&format!("/api/v1/jobs/{id}/logs")).await["stdout"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    outs.sort();
    let mut want = vec![format!("{}\n", h1.user()), format!("{}\n", h2.user())];
    want.sort();
    assert_eq!(outs, want);
    let v = stack.get(&format!("/api/v1/jobs?batch_id={batch}")).await;
    assert_eq!(v["pagination"]["total"], 2);
}

/// The in-process demo host of `remora up --demo` runs jobs too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_host_runs_jobs_and_accepts_only_its_key() {
    let stack = Stack::new().await;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sd = tokio_util::sync::CancellationToken::new();
    let demo = remora_ssh::demo::DemoHost::start(l, stack.dir.path(), sd.clone())
        .await
        .unwrap();
    let (st, v) = stack
        .post("/api/v1/servers", json!({ "name": "local-demo", "hostname": "127.0.0.1", "port": demo.addr.port(), "user": "demo", "private_key": demo.client_key }))
        .await;
    assert_eq!(st, 201, "{v}");
    let id = stack
        .submit("local-demo", "echo hi; echo oops >&2; exit 2")
        .await;
    let job = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(
        (job["status"].as_str(), job["exit_code"].as_i64()),
        (Some("failed"), Some(2)),
        "{job}"
    );
    let logs = stack.get(&format!("/api/v1/jobs/{id}/logs")).await;
    assert_eq!(
        (logs["stdout"].as_str(), logs["stderr"].as_str()),
        (Some("hi\n"), Some("oops\n"))
    );
    assert_eq!(
        job_fingerprint(&stack, "local-demo").await,
        demo.host_key_fingerprint
    );
    // Another key is refused.
    let other = SshHost::start().ok();
    if let Some(other) = other {
        let (st, _) = stack
            .post("/api/v1/servers", json!({ "name": "intruder", "hostname": "127.0.0.1", "port": demo.addr.port(), "user": "demo", "private_key": other.private_key() }))
            .await;
        assert_eq!(st, 201);
        let id = stack.submit("intruder", "echo in").await;
        let job = stack.wait_final(&id, Duration::from_secs(30)).await;
        assert_eq!(job["error_code"], "auth_failed", "{job}");
    }
    sd.cancel();
}

async fn job_fingerprint(stack: &Stack, server: &str) -> String {
    stack.get(&format!("/api/v1/servers/{server}")).await["host_key_fingerprint"]
        .as_str()
        .unwrap_or("")
        .to_string()
}
