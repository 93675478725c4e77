use crate::stack::{Db, Stack};
use remora_testkit::require;
use remora_testkit::sshd::SshHost;
use serde_json::json;
use std::time::Duration;

async fn exit_three_round_trip(stack: &Stack) {
    let host = SshHost::start().unwrap();
    let sid = stack.add_server("h1", &host).await;
    let id = stack.submit(&sid, "echo out; echo err >&2; exit 3").await;
    let job = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["exit_code"], 3);
    let logs = stack.get(&format!("/api/v1/jobs/{id}/logs")).await;
    assert_eq!(logs["stdout"], "out\n");
    assert_eq!(logs["stderr"], "err\n");
    assert_eq!(logs["exit_code"], 3);
    let raw = stack
        .http
        .get(format!("{}/api/v1/jobs/{id}/stdout", stack.url))
        .bearer_auth(&stack.token)
        .send()
        .await
        .unwrap();
    assert!(raw.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(raw.text().await.unwrap(), "out\n");
    let raw = stack
        .http
        .get(format!("{}/api/v1/jobs/{id}/stderr", stack.url))
        .bearer_auth(&stack.token)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.text().await.unwrap(), "err\n");
    // TOFU pinned the host key on the first connection.
    let srv = stack.get(&format!("/api/v1/servers/{sid}")).await;
    assert_eq!(srv["host_key_fingerprint"], host.host_key_fingerprint());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn job_round_trip_on_sqlite() {
    require!(SshHost::start());
    let stack = Stack::new().await;
    exit_three_round_trip(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn job_round_trip_on_postgres() {
    require!(SshHost::start());
    let Some(db) = remora_testkit::pg::database().unwrap() else {
        eprintln!("skipped: REMORA_TEST_PG_URL is not set");
        return;
    };
    let stack = Stack::start(Db::Postgres(db), Default::default()).await;
    exit_three_round_trip(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn output_is_visible_while_running() {
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    let sid = stack.add_server("h", &host).await;
    let id = stack
        .submit(
            &sid,
            "for i in $(seq 1 12); do echo line $i; sleep 0.5; done",
        )
        .await;
    // Within the 6 s run, /logs must already show lines while the job is running.
    let start = std::time::Instant::now();
    loop {
        let logs = stack.get(&format!("/api/v1/jobs/{id}/logs")).await;
        if logs["status"] == "running" && logs["stdout"].as_str().unwrap().starts_with("line 1\n") {
            break;
        }
        assert!(
            logs["status"] == "queued" || logs["status"] == "running",
            "job ended before its output was visible: {logs}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no output visible while running: {logs}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let job = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "completed");
    let logs = stack.get(&format!("/api/v1/jobs/{id}/logs")).await;
    let expected: String = (1..=12).map(|i| format!("line {i}\n")).collect();
    assert_eq!(logs["stdout"], expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_auth_script_job_and_bytes_exact_output() {
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    let (st, srv) = stack
        .post("/api/v1/servers", json!({ "name": "pw", "hostname": host.host(), "port": host.port(), "user": host.user(), "password": host.password() }))
        .await;
    assert_eq!(st, 201, "{srv}");
    assert_eq!(srv["has_password"], true);
    assert!(srv.get("password").is_none());
    assert!(
        !srv.to_string().contains(host.password()),
        "the password never comes back"
    );
    let script = "printf 'a\\n\\n\\nb €\\n'\nprintf 'args:%s|' \"$@\"\nexit 7\n";
    let (st, job) = stack
        .post("/api/v1/jobs/script", json!({ "server_id": "pw", "script": script, "args": ["x y", "it's"], "shell": "/bin/bash" }))
        .await;
    assert_eq!(st, 201, "{job}");
    let id = job["id"].as_str().unwrap();
    let job = stack.wait_final(id, Duration::from_secs(30)).await;
    assert_eq!(
        (job["status"].as_str(), job["exit_code"].as_i64()),
        (Some("failed"), Some(7)),
        "{job}"
    );
    let logs = stack.get(&format!("/api/v1/jobs/{id}/logs")).await;
    assert_eq!(logs["stdout"], "a\n\n\nb €\nargs:x y|args:it's|");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_are_json_and_name_the_problem() {
    let stack = Stack::new().await;
    // health needs no token
    let h: serde_json::Value = reqwest::get(format!("{}/health", stack.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["status"], "healthy");
    // no token → 401 JSON
    let r = stack
        .http
        .get(format!("{}/api/v1/jobs", stack.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unauthorized");
    // bad token → 401
    let r = stack
        .http
        .get(format!("{}/api/v1/servers", stack.url))
        .bearer_auth("rmr_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // missing command → 422 naming the field
    let (st, v) = stack
        .post("/api/v1/jobs", json!({ "server_id": "x" }))
        .await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["error"]["field"], "command");
    // unknown server → 404
    let (st, v) = stack
        .post(
            "/api/v1/jobs",
            json!({ "server_id": "nope", "command": "true" }),
        )
        .await;
    assert_eq!(st, 404, "{v}");
    assert_eq!(v["error"]["code"], "not_found");
    // malformed JSON → 400
    let r = stack
        .http
        .post(format!("{}/api/v1/jobs", stack.url))
        .bearer_auth(&stack.token)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_json");
    // wrong type → 422 naming the field
    let (st, v) = stack
        .post(
            "/api/v1/jobs",
            json!({ "server_id": "x", "command": "true", "priority": "high" }),
        )
        .await;
    assert_eq!(st, 422, "{v}");
    // priority out of range
    let (st, v) = stack
        .post(
            "/api/v1/servers",
            json!({ "name": "s", "hostname": "h", "user": "u", "password": "p" }),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = stack
        .post(
            "/api/v1/jobs",
            json!({ "server_id": "s", "command": "true", "priority": 11 }),
        )
        .await;
    assert_eq!((st, v["error"]["field"].as_str()), (422, Some("priority")));
    // duplicate server name → 409
    let (st, v) = stack
        .post(
            "/api/v1/servers",
            json!({ "name": "s", "hostname": "h", "user": "u", "password": "p" }),
        )
        .await;
    assert_eq!((st, v["error"]["field"].as_str()), (409, Some("name")));
    // bad port, shell not allowed, bad key
    let (st, v) = stack
        .post(
            "/api/v1/servers",
            json!({ "name": "t", "hostname": "h", "user": "u", "password": "p", "port": 70000 }),
        )
        .await;
    assert_eq!((st, v["error"]["field"].as_str()), (422, Some("port")));
    let (st, v) = stack
        .post(
            "/api/v1/jobs/script",
            json!({ "server_id": "s", "script": "true", "shell": "/usr/bin/evil" }),
        )
        .await;
    assert_eq!((st, v["error"]["field"].as_str()), (422, Some("shell")));
    let (st, v) = stack
        .post(
            "/api/v1/servers",
            json!({ "name": "k", "hostname": "h", "user": "u", "private_key": "not a key" }),
        )
        .await;
    assert_eq!(
        (st, v["error"]["field"].as_str()),
        (422, Some("private_key"))
    );
    // unknown job → 404; bad list filter → 422
    let (st, _) = stack
        .call(reqwest::Method::GET, "/api/v1/jobs/nope", None)
        .await;
    assert_eq!(st, 404);
    let (st, v) = stack
        .call(reqwest::Method::GET, "/api/v1/jobs?status=done", None)
        .await;
    assert_eq!((st, v["error"]["field"].as_str()), (422, Some("status")));
    // unknown route → 404 JSON
    let (st, v) = stack
        .call(reqwest::Method::GET, "/api/v1/nothing", None)
        .await;
    assert_eq!((st, v["error"]["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_paginates_and_filters() {
    let stack = Stack::new().await;
    let (st, _) = stack.post("/api/v1/servers", json!({ "name": "s", "hostname": "127.0.0.1", "port": 1, "user": "u", "password": "p" })).await;
    assert_eq!(st, 201);
    for i in 0..5 {
        let (st, _) = stack
            .post(
                "/api/v1/jobs",
                json!({ "server_id": "s", "command": format!("echo {i}"), "max_retries": 0 }),
            )
            .await;
        assert_eq!(st, 201);
    }
    let v = stack.get("/api/v1/jobs?limit=2&page=2").await;
    assert_eq!(v["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(v["pagination"]["total"], 5);
    assert_eq!(v["pagination"]["total_pages"], 3);
    assert_eq!(v["pagination"]["has_next"], true);
    assert_eq!(v["pagination"]["has_prev"], true);
    let v = stack.get("/api/v1/jobs?search=echo%203").await;
    assert_eq!(v["pagination"]["total"], 1);
    // The server refuses connections (port 1): every job fails with a reason.
    let first = v["jobs"][0]["id"].as_str().unwrap().to_string();
    let job = stack.wait_final(&first, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error_code"], "connect_failed", "{job}");
    let v = stack.get("/api/v1/jobs?status=completed").await;
    assert_eq!(v["pagination"]["total"], 0);
}
