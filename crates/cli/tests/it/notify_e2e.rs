//! Notifications through the whole stack (API, queue, worker, a real sshd, the dispatcher and
//! the sender): job, batch, host-key and worker events arrive signed at a webhook receiver the
//! test runs; the output compression ratio is reported by `/system/enhanced`.

use crate::hooks::{self, Receiver};
use crate::stack::{Db, Stack};
use remora_testkit::require;
use remora_testkit::sshd::SshHost;
use serde_json::json;
use std::time::{Duration, Instant};

/// A stack whose notification tasks poll every 100 ms and whose reaper marks a worker down
/// after 3 s without heartbeats.
async fn stack() -> Stack {
    let cfg = remora_api::ApiConfig {
        worker_down_after: Duration::from_secs(3),
        notify: remora_notify::NotifyConfig {
            poll: Duration::from_millis(100),
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(1),
            ..Default::default()
        },
        ..Default::default()
    };
    Stack::start_with(Db::from_env(), remora_worker::WorkerConfig::default(), cfg).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_failing_on_a_real_sshd_sends_a_signed_webhook() {
    let host = require!(SshHost::start());
    let stack = stack().await;
    let rx = Receiver::start().await;
    let tid = hooks::target(&stack, "ops", &rx.url, &["job.failed"]).await;
    let sid = stack.add_server("web-1", &host).await;
    // A completed job is not an event this target wants.
    let ok = stack.submit(&sid, "echo fine").await;
    assert_eq!(
        stack.wait_final(&ok, Duration::from_secs(30)).await["status"],
        "completed"
    );
    let bad = stack.submit(&sid, "echo about to fail; exit 3").await;
    let job = stack.wait_final(&bad, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "failed", "{job}");
    let hit = rx
        .wait_for("job.failed", Duration::from_secs(30), |b| {
            b["job"]["id"] == bad.as_str()
        })
        .await;
    assert!(
        hit.verified,
        "the signature verifies with the target's secret"
    );
    let b = &hit.body;
    assert_eq!(
        (
            &b["event"],
            &b["job"]["exit_code"],
            &b["job"]["status"],
            &b["server"]["name"]
        ),
        (
            &json!("job.failed"),
            &json!(3),
            &json!("failed"),
            &json!("web-1")
        ),
        "{b}"
    );
    assert!(
        rx.hits().iter().all(|h| h.body["job"]["id"] != ok.as_str()),
        "the completed job was not sent"
    );
    // The delivery log says it arrived.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = stack
            .get(&format!("/api/v1/notifications/{tid}/deliveries"))
            .await;
        let d = &log["deliveries"][0];
        if d["state"] == "delivered" {
            assert_eq!(
                (&d["event"], &d["last_status_code"], &d["attempts"]),
                (&json!("job.failed"), &json!(204), &json!(1)),
                "{log}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "delivery not logged: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_host_key_and_worker_down_events_reach_the_receiver() {
    let mut h1 = require!(SshHost::start());
    let h2 = require!(SshHost::start_on("127.0.1.2"));
    let stack = stack().await;
    let rx = Receiver::start().await;
    hooks::target(
        &stack,
        "ops",
        &rx.url,
        &["batch.finished", "host_key.mismatch", "worker.down"],
    )
    .await;
    stack.add_server("a", &h1).await;
    stack.add_server("b", &h2).await;

    // batch.finished: the job on `a` fails (it is not 127.0.1.2), so the batch's status is `failed`; sent once.
    let (st, v) = stack
        .post(
            "/api/v1/jobs",
            json!({ "server_ids": ["a", "b"], "command": "set -- $SSH_CONNECTION; [ \"$3\" = 127.0.1.2 ] || exit 4" }),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let batch = v["batch_id"].as_str().unwrap().to_string();
    for j in v["jobs"].as_array().unwrap() {
        stack
            .wait_final(j["id"].as_str().unwrap(), Duration::from_secs(30))
            .await;
    }
    let hit = rx
        .wait_for("batch.finished", Duration::from_secs(30), |b| {
            b["event"] == "batch.finished"
        })
        .await;
    assert!(hit.verified);
    assert_eq!(
        hit.body["batch"],
        json!({ "id": batch, "jobs": 2, "status": "failed" }),
        "{}",
        hit.body
    );

    // host_key.mismatch: the host was reinstalled (new key) after its key was pinned.
    let id = stack.submit("a", "true").await;
    assert_eq!(
        stack.wait_final(&id, Duration::from_secs(30)).await["status"],
        "completed"
    );
    h1.regenerate_host_key().unwrap();
    crate::worker_more::kill_sshd_sessions(&h1);
    let id = stack.submit("a", "echo should-not-run").await;
    let job = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(job["error_code"], "host_key_mismatch", "{job}");
    let hit = rx
        .wait_for("host_key.mismatch", Duration::from_secs(30), |b| {
            b["event"] == "host_key.mismatch"
        })
        .await;
    assert!(hit.verified);
    assert_eq!(
        (&hit.body["job"]["id"], &hit.body["server"]["name"]),
        (&json!(id), &json!("a")),
        "{}",
        hit.body
    );

    // worker.down: a worker that registered and then stopped heartbeating.
    let now = remora_domain::time::now_ms();
    stack
        .store
        .register_worker(&remora_store::WorkerRow {
            id: "w-gone".into(),
            hostname: "gone.example".into(),
            version: "test".into(),
            concurrency: 1,
            running: 0,
            started_at: now,
            last_heartbeat_at: now,
            status: "up".into(),
        })
        .await
        .unwrap();
    let hit = rx
        .wait_for("worker.down", Duration::from_secs(30), |b| {
            b["event"] == "worker.down"
        })
        .await;
    assert!(hit.verified);
    assert_eq!(hit.body["worker"]["id"], "w-gone", "{}", hit.body);
    // Each event once.
    let count = |e: &str| rx.hits().iter().filter(|h| h.body["event"] == e).count();
    assert_eq!(
        (count("batch.finished"), count("host_key.mismatch")),
        (1, 1),
        "{:?}",
        rx.hits()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_output_compression_ratio_appears_in_system_enhanced() {
    let host = require!(SshHost::start());
    let cfg = remora_api::ApiConfig {
        maintenance: remora_store::maintenance::MaintenanceConfig {
            interval: Duration::from_millis(200),
            compress_after: Duration::ZERO,
            ..Default::default()
        },
        ..Default::default()
    };
    let stack =
        Stack::start_with(Db::from_env(), remora_worker::WorkerConfig::default(), cfg).await;
    let sid = stack.add_server("h", &host).await;
    let before = stack.get("/api/v1/system/enhanced").await;
    assert_eq!(
        before["output_compression"]["ratio"],
        json!(null),
        "{before}"
    );
    // Log-like lines: repetitive, as real logs are.
    let id = stack
        .submit(
            &sid,
            "i=0; while [ $i -lt 3000 ]; do echo \"Dec  2 00:00:$((i % 60)) web-1 systemd[1]: Started Session $i of user deploy.\"; i=$((i+1)); done",
        )
        .await;
    assert_eq!(
        stack.wait_final(&id, Duration::from_secs(60)).await["status"],
        "completed"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let c = loop {
        let v = stack.get("/api/v1/system/enhanced").await;
        let c = v["output_compression"].clone();
        if c["jobs"].as_i64().unwrap_or(0) >= 1 {
            break c;
        }
        assert!(Instant::now() < deadline, "output never packed: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ratio = c["ratio"].as_f64().unwrap();
    assert!(
        ratio > 5.0 && c["raw_bytes"].as_i64().unwrap() > 150_000,
        "log-like output compresses: {c}"
    );
    // Packed output reads back unchanged.
    let logs = stack.get(&format!("/api/v1/jobs/{id}/logs")).await;
    let out = logs["stdout"].as_str().unwrap();
    assert_eq!(out.lines().count(), 3000);
    assert!(out.ends_with("Started Session 2999 of user deploy.\n"));
}
