//! Issue 14 item 11: input that is the request's fault gets a 4xx on both
//! databases (a NUL byte in a script, a name, `search` or a path id used
//! to reach PostgreSQL and come back as 503 `database_unavailable`), and
//! `remora servers accept-key NAME` (no fingerprint) sends a body the API
//! takes.

use crate::stack::{Db, Stack};
use remora_testkit::require;
use remora_testkit::sshd::SshHost;
use serde_json::json;

/// Every way a NUL byte reaches the API is a 422 naming where it was.
async fn nul_bytes_are_refused(stack: &Stack) {
    let sid = stack.add_server_raw("nul-target").await;
    for (path, field) in [
        ("/api/v1/jobs?search=a%00b", Some("search")),
        ("/api/v1/jobs/abc%00def", Some("path")),
        ("/api/v1/servers/abc%00def", Some("path")),
        ("/api/v1/servers/abc%00def/status", Some("path")),
        ("/api/v1/jobs/abc%00def/logs", Some("path")),
    ] {
        let (st, v) = stack.call(reqwest::Method::GET, path, None).await;
        assert_eq!(st, 422, "GET {path}: {v}");
        assert_eq!(v["error"]["code"], "invalid_text", "{v}");
        assert_eq!(v["error"]["field"].as_str(), field, "{v}");
    }
    let cases = [
        (
            "/api/v1/servers",
            json!({ "name": "bad\u{0}name", "hostname": "127.0.0.1", "user": "u", "password": "p" }),
            "name",
        ),
        (
            "/api/v1/jobs",
            json!({ "server_id": sid, "command": "echo", "args": ["ok", "a\u{0}b"] }),
            "args[1]",
        ),
        (
            "/api/v1/jobs/script",
            json!({ "server_id": sid, "script": "echo a\u{0}b", "shell": "/bin/sh" }),
            "script",
        ),
    ];
    for (path, body, field) in cases {
        let (st, v) = stack.post(path, body.clone()).await;
        assert_eq!(st, 422, "POST {path} {body}: {v}");
        assert_eq!(v["error"]["code"], "invalid_text", "{v}");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
    // Nothing was stored, and the database is fine.
    let (st, v) = stack
        .call(reqwest::Method::GET, "/api/v1/servers", None)
        .await;
    assert_eq!(st, 200, "{v}");
    // (By name: a random id may well contain the letters "bad".)
    let names: Vec<&str> = v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nul-target"], "{v}");
    // A backslash followed by `u0000` (no NUL) is ordinary text.
    let (st, v) = stack
        .post(
            "/api/v1/jobs/script",
            json!({ "server_id": sid, "script": "printf '%s' '\\u0000'", "shell": "/bin/sh" }),
        )
        .await;
    assert_eq!(st, 201, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nul_bytes_are_422_on_sqlite() {
    let stack = Stack::start(Db::Sqlite, Default::default()).await;
    nul_bytes_are_refused(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nul_bytes_are_422_on_postgres() {
    let Some(db) = remora_testkit::pg::database().unwrap() else {
        eprintln!("skipped: REMORA_TEST_PG_URL is not set");
        return;
    };
    let stack = Stack::start(Db::Postgres(db), Default::default()).await;
    nul_bytes_are_refused(&stack).await;
}

/// `remora servers accept-key NAME` without `--fingerprint` posts `{}` and
/// pins the key the host presents now (it used to post `null`, a 400).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accept_key_without_a_fingerprint_pins_the_new_key() {
    let mut host = require!(SshHost::start());
    let stack = Stack::new().await;
    stack.add_server("ak", &host).await;
    let (st, v) = stack.post("/api/v1/servers/ak/test", json!({})).await;
    assert_eq!(st, 200, "{v}");
    host.regenerate_host_key().unwrap();
    let out = crate::cli::remora(&stack, &["servers", "accept-key", "ak"], None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = stack.get("/api/v1/servers/ak").await;
    assert_eq!(
        s["host_key_fingerprint"],
        host.host_key_fingerprint(),
        "{s}"
    );
    // The raw API takes `{}` too, and an empty body.
    let (st, v) = stack
        .post("/api/v1/servers/ak/host-key/accept", json!({}))
        .await;
    assert_eq!(st, 200, "{v}");
}
