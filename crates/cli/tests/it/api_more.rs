//! The rest of the API surface: server checks and edits, host keys, PEM
//! uploads, tokens and roles, audit, duplicate/rerun, batches, system info,
//! export, live streams, and secrets never leaking.

use crate::stack::{Db, Stack};
use futures::StreamExt;
use remora_testkit::require;
use remora_testkit::sshd::{KeyKind, SshHost};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn upload_pem(stack: &Stack, pem: &str) -> (u16, Value) {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::text(pem.to_string()).file_name("../../etc/passwd"),
    );
    let r = stack
        .http
        .post(format!("{}/api/v1/pem-files", stack.url))
        .bearer_auth(&stack.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pem_upload_test_connection_and_host_key_accept() {
    let mut host = require!(SshHost::start());
    let stack = Stack::new().await;
    let pem = host.add_key(KeyKind::Rsa, None, true).unwrap();
    assert!(pem.contains("BEGIN RSA PRIVATE KEY"), "{pem}");
    let (st, v) = upload_pem(&stack, &pem).await;
    assert_eq!(st, 201, "{v}");
    assert!(v["fingerprint"].as_str().unwrap().starts_with("SHA256:"));
    assert!(v["key_type"].as_str().unwrap().contains("rsa"), "{v}");
    let pem_id = v["id"].as_str().unwrap().to_string();
    let (st, v) = upload_pem(
        &stack,
        "-----BEGIN RSA PRIVATE KEY-----\ngarbage\n-----END RSA PRIVATE KEY-----\n",
    )
    .await;
    assert_eq!(
        (st, v["error"]["field"].as_str()),
        (422, Some("file")),
        "{v}"
    );
    let (st, v) = upload_pem(&stack, &"x".repeat(70 * 1024)).await;
    assert_eq!(st, 413, "{v}");
    assert_eq!(
        stack.get("/api/v1/pem-files").await["pem_files"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let (st, srv) = stack.post("/api/v1/servers", json!({ "name": "p", "hostname": host.host(), "port": host.port(), "user": host.user(), "pem_file_id": pem_id })).await;
    assert_eq!(st, 201, "{srv}");
    assert_eq!(srv["auth_type"], "key");
    let (st, t) = stack.post("/api/v1/servers/p/test", json!(null)).await;
    assert_eq!(st, 200);
    assert_eq!(t["ok"], true, "{t}");
    assert_eq!(t["host_key_status"], "new");
    assert_eq!(t["host_key_fingerprint"], host.host_key_fingerprint());
    assert!(t["latency_ms"].as_u64().is_some());
    let (_, t) = stack.post("/api/v1/servers/p/test", json!(null)).await;
    assert_eq!(t["host_key_status"], "pinned");
    // The key in use cannot be deleted.
    let (st, _) = stack
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/pem-files/{pem_id}"),
            None,
        )
        .await;
    assert_eq!(st, 409);

    // A changed key: test reports the mismatch without logging in; accept pins the new one.
    host.regenerate_host_key().unwrap();
    let (_, t) = stack.post("/api/v1/servers/p/test", json!(null)).await;
    assert_eq!(
        (t["ok"].as_bool(), t["host_key_status"].as_str()),
        (Some(false), Some("mismatch")),
        "{t}"
    );
    assert_eq!(t["host_key_fingerprint"], host.host_key_fingerprint());
    let (st, v) = stack
        .post(
            "/api/v1/servers/p/host-key/accept",
            json!({ "fingerprint": "SHA256:not-it" }),
        )
        .await;
    assert_eq!(st, 409, "{v}");
    let (st, v) = stack
        .post(
            "/api/v1/servers/p/host-key/accept",
            json!({ "fingerprint": host.host_key_fingerprint() }),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["host_key_fingerprint"], host.host_key_fingerprint());
    let id = stack.submit("p", "echo after-accept").await;
    let job = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let audit = stack.get("/api/v1/audit").await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "server.host_key.accept"),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulk_status_takes_the_slowest_not_the_sum() {
    let host = require!(SshHost::start());
    let cfg = remora_api::ApiConfig {
        check_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let stack = Stack::start_with(Db::from_env(), Default::default(), cfg).await;
    stack.add_server("good", &host).await;
    // Two hosts that accept TCP but never speak SSH.
    let mut silent = Vec::new();
    for name in ["mute1", "mute2"] {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (st, v) = stack.post("/api/v1/servers", json!({ "name": name, "hostname": "127.0.0.1", "port": l.local_addr().unwrap().port(), "user": "x", "password": "y" })).await;
        assert_eq!(st, 201, "{v}");
        silent.push(l);
    }
    let start = Instant::now();
    let (st, v) = stack.post("/api/v1/servers/status", json!({})).await;
    assert_eq!(st, 200, "{v}");
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(3500),
        "bulk check took {took:?}: not concurrent"
    );
    let results = v["servers"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for r in results {
        if r["name"] == "good" {
            assert_eq!(r["status"], "reachable", "{r}");
        } else {
            assert_eq!(r["status"], "timeout", "{r}");
        }
    }
    let s = stack.get("/api/v1/servers/mute1").await;
    assert_eq!(s["last_status"], "timeout");
    assert!(s["last_checked_at"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn update_duplicate_rerun_batch_and_system_info() {
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    // Empty database: no NaN.
    let info = stack.get("/api/v1/system/info").await;
    assert_eq!(info["success_rate"], Value::Null);
    assert_eq!(info["jobs"]["total"], 0);
    let sid = stack.add_server("h", &host).await;
    // Partial update keeps the key.
    let (st, v) = stack
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/servers/{sid}"),
            Some(json!({ "tags": ["web"], "max_concurrency": 3 })),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (
            v["tags"][0].as_str(),
            v["max_concurrency"].as_i64(),
            v["has_private_key"].as_bool()
        ),
        (Some("web"), Some(3), Some(true))
    );
    let (st, v) = stack
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/servers/{sid}"),
            Some(json!({ "port": 0 })),
        )
        .await;
    assert_eq!((st, v["error"]["field"].as_str()), (422, Some("port")));

    let (st, v) = stack
        .post(
            "/api/v1/jobs",
            json!({ "tag": "web", "command": "echo $((6*7))" }),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let batch = v["batch_id"].as_str().unwrap().to_string();
    let first = v["jobs"][0]["id"].as_str().unwrap().to_string();
    stack.wait_final(&first, Duration::from_secs(30)).await;
    let b = stack.get(&format!("/api/v1/batches/{batch}")).await;
    assert_eq!(
        (
            b["total"].as_i64(),
            b["summary"]["completed"].as_i64(),
            b["finished"].as_bool()
        ),
        (Some(1), Some(1), Some(true)),
        "{b}"
    );
    assert_eq!(b["servers"][0]["server_name"], "h");

    let (st, rerun) = stack
        .post(&format!("/api/v1/jobs/{first}/rerun"), json!(null))
        .await;
    assert_eq!(st, 201, "{rerun}");
    assert_ne!(rerun["id"], first);
    let rid = rerun["id"].as_str().unwrap();
    assert_eq!(
        stack.wait_final(rid, Duration::from_secs(30)).await["status"],
        "completed"
    );
    assert_eq!(
        stack.get(&format!("/api/v1/jobs/{rid}/logs")).await["stdout"],
        "42\n"
    );
    let (st, dup) = stack
        .post(
            &format!("/api/v1/jobs/{first}/duplicate"),
            json!({ "priority": 9, "timeout": 30 }),
        )
        .await;
    assert_eq!(st, 201, "{dup}");
    assert_eq!(
        (
            dup["priority"].as_i64(),
            dup["timeout"].as_i64(),
            dup["batch_id"].is_null()
        ),
        (Some(9), Some(30), true)
    );
    let (st, v) = stack
        .post(
            &format!("/api/v1/jobs/{first}/duplicate"),
            json!({ "priority": 0 }),
        )
        .await;
    assert_eq!((st, v["error"]["field"].as_str()), (422, Some("priority")));
    let (st, nb) = stack
        .post(&format!("/api/v1/batches/{batch}/rerun"), json!(null))
        .await;
    assert_eq!(st, 201, "{nb}");
    let did = dup["id"].as_str().unwrap();
    stack.wait_final(did, Duration::from_secs(30)).await;
    let nid = nb["jobs"][0]["id"].as_str().unwrap();
    stack.wait_final(nid, Duration::from_secs(30)).await;

    let info = stack.get("/api/v1/system/enhanced").await;
    assert_eq!(info["success_rate"], 1.0, "{info}");
    assert_eq!(info["jobs"]["by_status"]["completed"], 4);
    assert_eq!(info["throughput"].as_array().unwrap().len(), 60);
    assert_eq!(
        info["throughput"][59]["completed"].as_i64().unwrap()
            + info["throughput"][58]["completed"].as_i64().unwrap(),
        4
    );
    assert_eq!(info["workers"]["up"], 1);

    // Export of today's finished jobs as NDJSON.
    let today = remora_domain::time::ms_to_rfc3339(remora_domain::time::now_ms())[..10].to_string();
    let r = stack
        .http
        .get(format!("{}/api/v1/jobs/export?date={today}", stack.url))
        .bearer_auth(&stack.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let body = r.text().await.unwrap();
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    let (st, v) = stack
        .call(
            reqwest::Method::GET,
            "/api/v1/jobs/export?date=2026-13-01",
            None,
        )
        .await;
    assert_eq!((st, v["error"]["field"].as_str()), (422, Some("date")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_roles_and_audit() {
    let stack = Stack::new().await;
    let (st, v) = stack
        .post("/api/v1/tokens", json!({ "name": "ci", "role": "viewer" }))
        .await;
    assert_eq!(st, 201, "{v}");
    let viewer = v["token"].as_str().unwrap().to_string();
    let vid = v["id"].as_str().unwrap().to_string();
    let list = stack.get("/api/v1/tokens").await;
    assert!(
        !list.to_string().contains(&viewer),
        "token secrets are never listed"
    );
    // viewer reads, cannot write
    let r = stack
        .http
        .get(format!("{}/api/v1/jobs", stack.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = stack
        .http
        .post(format!("{}/api/v1/servers", stack.url))
        .bearer_auth(&viewer)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (st, _) = stack
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/tokens/{vid}"),
            None,
        )
        .await;
    assert_eq!(st, 204);
    let r = stack
        .http
        .get(format!("{}/api/v1/jobs", stack.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "revoked");
    let (st, v) = stack
        .post("/api/v1/tokens", json!({ "name": "x", "role": "root" }))
        .await;
    assert_eq!((st, v["error"]["field"].as_str()), (422, Some("role")));
    let audit = stack.get("/api/v1/audit").await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"token.create") && actions.contains(&"token.revoke"),
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_never_leave_and_are_encrypted_at_rest() {
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    let (st, _) = stack.post("/api/v1/servers", json!({ "name": "pw", "hostname": host.host(), "port": host.port(), "user": host.user(), "password": host.password() })).await;
    assert_eq!(st, 201);
    stack.add_server("key", &host).await;
    let id = stack.submit("pw", "true").await;
    stack.wait_final(&id, Duration::from_secs(30)).await;
    let mut seen = String::new();
    for path in [
        "/api/v1/servers",
        "/api/v1/servers/pw",
        "/api/v1/servers/key",
        "/api/v1/audit",
        &format!("/api/v1/jobs/{id}"),
    ] {
        seen.push_str(&stack.get(path).await.to_string());
    }
    let key_body: String = host
        .private_key()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!seen.contains(host.password()));
    assert!(!seen.contains(&key_body[..40]));
    // Nothing in the data dir (database, WAL) holds them in plaintext.
    for entry in std::fs::read_dir(stack.dir.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(host.password()),
                "password in plaintext in {}",
                p.display()
            );
            assert!(
                !text.contains(&key_body[..40]),
                "key in plaintext in {}",
                p.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sse_streams_output_live_and_resumes() {
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    let sid = stack.add_server("h", &host).await;
    let id = stack
        .submit(
            &sid,
            "echo first; sleep 2; echo second >&2; sleep 1; echo third",
        )
        .await;
    let (st, _) = stack
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/jobs/{id}/stream"),
            None,
        )
        .await;
    let _ = st;
    // A token in the URL is refused (URLs are logged): only the header counts.
    let r = stack
        .http
        .get(format!(
            "{}/api/v1/jobs/{id}/stream?access_token={}",
            stack.url, stack.token
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = stack
        .http
        .get(format!("{}/api/v1/jobs/{id}/stream", stack.url))
        .bearer_auth(&stack.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut events = eventsource_stream::Eventsource::eventsource(r.bytes_stream());
    let start = Instant::now();
    let mut out = String::new();
    let mut err = String::new();
    let mut first_at = None;
    let mut last_id = String::new();
    let mut final_status = None;
    while let Some(ev) = events.next().await {
        let ev = ev.unwrap();
        if ev.event == "output" {
            let v: Value = serde_json::from_str(&ev.data).unwrap();
            if v["stream"] == "stdout" {
                out.push_str(v["data"].as_str().unwrap())
            } else {
                err.push_str(v["data"].as_str().unwrap())
            }
            if first_at.is_none() {
                first_at = Some(start.elapsed());
            }
            last_id = ev.id.clone();
        }
        if ev.event == "status" {
            let j: Value = serde_json::from_str(&ev.data).unwrap();
            if j["status"] == "completed" {
                final_status = Some(j);
            }
        }
        assert!(start.elapsed() < Duration::from_secs(20));
    }
    assert_eq!((out.as_str(), err.as_str()), ("first\nthird\n", "second\n"));
    assert!(
        final_status.is_some(),
        "the stream ends with the final status"
    );
    // The first line arrived long before the job ended (live, not at the 2 s flush).
    assert!(
        first_at.unwrap() < Duration::from_millis(1500),
        "first output after {:?}",
        first_at
    );
    // Resume from the last id: nothing is sent twice.
    let r = stack
        .http
        .get(format!("{}/api/v1/jobs/{id}/stream", stack.url))
        .bearer_auth(&stack.token)
        .header("last-event-id", &last_id)
        .send()
        .await
        .unwrap();
    let mut events = eventsource_stream::Eventsource::eventsource(r.bytes_stream());
    let mut again = 0;
    while let Some(ev) = events.next().await {
        if ev.unwrap().event == "output" {
            again += 1;
        }
    }
    assert_eq!(again, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_stream_reports_status_changes() {
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    let sid = stack.add_server("h", &host).await;
    let r = stack
        .http
        .get(format!("{}/api/v1/events", stack.url))
        .bearer_auth(&stack.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut events = eventsource_stream::Eventsource::eventsource(r.bytes_stream());
    // Subscription is in place once the response headers arrived.
    let id = stack.submit(&sid, "true").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while !seen.contains(&"completed".to_string()) {
        let ev = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("no completed event")
            .unwrap()
            .unwrap();
        if ev.event == "job" {
            let v: Value = serde_json::from_str(&ev.data).unwrap();
            if v["job_id"] == id.as_str() {
                seen.push(v["status"].as_str().unwrap().to_string());
            }
        }
    }
    assert!(seen.contains(&"running".to_string()), "{seen:?}");
}
