//! Request validation through `app(state)` without a socket: every refused
//! job submission, server create/update and list query answers its status,
//! `code` and `field` (a real SQLite store in a tempdir; no queue runs, so
//! only requests refused before a push are sent).

use crate::{app, auth, ApiConfig, AppState};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt;

const TOKEN: &str = "rmr_validation_test_token";

struct Api {
    app: Router,
    _dir: tempfile::TempDir,
}

/// An `AppState` over a real SQLite store in a tempdir, holding `tokens` as
/// (name, secret, role), with a queue client pointed at a port nothing
/// listens on (it stays disconnected). Shared by the crate's request tests.
pub(crate) async fn state_with(
    cfg: ApiConfig,
    tokens: &[(&str, &str, &str)],
) -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = remora_store::Store::connect(&remora_store::default_url(dir.path()))
        .await
        .unwrap();
    for (name, secret, role) in tokens {
        store
            .insert_token(name, &auth::hash_token(secret), role)
            .await
            .unwrap();
    }
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    let queue = remora_netqueue::Client::connect_lazy(&addr, None)
        .await
        .unwrap();
    let vault = remora_store::Vault::new([7u8; 32]);
    (AppState::new(store, vault, queue, cfg), dir)
}

async fn api() -> Api {
    let (state, dir) = state_with(ApiConfig::default(), &[("test", TOKEN, "admin")]).await;
    Api {
        app: app(state),
        _dir: dir,
    }
}

impl Api {
    async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, body)
    }

    async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        };
        self.send(req.unwrap()).await
    }

    /// `method uri body` is refused with `status`, `code` and `field`.
    async fn refused(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        status: StatusCode,
        code: &str,
        field: Option<&str>,
    ) {
        let (got, b) = self.call(method.clone(), uri, body.clone()).await;
        let what = format!("{method} {uri} {body:?} answered {got} {b}");
        assert_eq!(got, status, "{what}");
        assert_eq!(b["error"]["code"], code, "{what}");
        assert_eq!(b["error"]["field"].as_str(), field, "{what}");
        assert!(
            b["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    }

    async fn server(&self, name: &str) -> Value {
        let (st, b) = self
            .call(
                Method::POST,
                "/api/v1/servers",
                Some(
                    json!({ "name": name, "hostname": "127.0.0.1", "user": "u", "password": "pw" }),
                ),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        b
    }
}

const UNPROCESSABLE: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;

#[tokio::test]
async fn job_submissions_name_the_refused_field() {
    let api = api().await;
    api.server("web1").await;
    let post = |b: Value| (Method::POST, "/api/v1/jobs", Some(b));
    let cases: Vec<(Value, StatusCode, &str, Option<&str>)> = vec![
        (
            json!({ "server_id": "web1" }),
            UNPROCESSABLE,
            "missing_field",
            Some("command"),
        ),
        (
            json!({ "server_id": "web1", "command": "  " }),
            UNPROCESSABLE,
            "missing_field",
            Some("command"),
        ),
        (
            json!({ "server_id": "web1", "command": "a\u{0}b" }),
            UNPROCESSABLE,
            "invalid_text",
            Some("command"),
        ),
        (
            json!({ "server_id": "web1", "command": "x", "script": "y" }),
            UNPROCESSABLE,
            "validation_failed",
            Some("script"),
        ),
        (
            json!({ "command": "x" }),
            UNPROCESSABLE,
            "missing_field",
            Some("server_id"),
        ),
        (
            json!({ "command": "x", "server_id": "web1", "tag": "t" }),
            UNPROCESSABLE,
            "validation_failed",
            Some("server_id"),
        ),
        (
            json!({ "command": "x", "server_ids": [] }),
            UNPROCESSABLE,
            "validation_failed",
            Some("server_ids"),
        ),
        (
            json!({ "command": "x", "server_id": "web1", "priority": 11 }),
            UNPROCESSABLE,
            "validation_failed",
            Some("priority"),
        ),
        (
            json!({ "command": "x", "server_id": "web1", "priority": 0 }),
            UNPROCESSABLE,
            "validation_failed",
            Some("priority"),
        ),
        (
            json!({ "command": "x", "server_id": "web1", "timeout": -1 }),
            UNPROCESSABLE,
            "validation_failed",
            Some("timeout"),
        ),
        (
            json!({ "command": "x", "server_id": "web1", "timeout": 7 * 24 * 3600 + 1 }),
            UNPROCESSABLE,
            "validation_failed",
            Some("timeout"),
        ),
        (
            json!({ "command": "x", "server_id": "web1", "max_retries": 11 }),
            UNPROCESSABLE,
            "validation_failed",
            Some("max_retries"),
        ),
        (
            json!({ "command": "x", "server_id": "web1", "args": ["a\u{0}"] }),
            UNPROCESSABLE,
            "invalid_text",
            Some("args[0]"),
        ),
        (
            json!({ "command": "x", "server_id": "web1", "bogus": 1 }),
            UNPROCESSABLE,
            "invalid_field",
            Some("bogus"),
        ),
        (
            json!({ "command": 5, "server_id": "web1" }),
            UNPROCESSABLE,
            "invalid_field",
            Some("command"),
        ),
        (
            json!({ "command": "x", "server_id": "nope" }),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            json!({ "command": "x", "tag": "none-has-it" }),
            StatusCode::NOT_FOUND,
            "not_found",
            Some("tag"),
        ),
    ];
    for (body, status, code, field) in cases {
        let (m, uri, b) = post(body);
        api.refused(m, uri, b, status, code, field).await;
    }
    let script = "/api/v1/jobs/script";
    let cases: Vec<(Value, &str, Option<&str>)> = vec![
        (
            json!({ "server_id": "web1" }),
            "missing_field",
            Some("script"),
        ),
        (
            json!({ "server_id": "web1", "script": "x", "command": "y" }),
            "validation_failed",
            Some("command"),
        ),
        (
            json!({ "server_id": "web1", "script": "x", "shell": "/bin/evil" }),
            "validation_failed",
            Some("shell"),
        ),
    ];
    for (body, code, field) in cases {
        api.refused(Method::POST, script, Some(body), UNPROCESSABLE, code, field)
            .await;
    }
    // Bodies that are not JSON objects at all.
    let raw = |ct: Option<&str>, body: &'static str| {
        let mut r = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/jobs")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        if let Some(ct) = ct {
            r = r.header(header::CONTENT_TYPE, ct);
        }
        r.body(Body::from(body)).unwrap()
    };
    let (st, b) = api.send(raw(Some("application/json"), "{")).await;
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    let (st, b) = api.send(raw(None, "{}")).await;
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    // Without a token nothing is validated.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/jobs")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let (st, b) = api.send(req).await;
    assert_eq!(
        (st, b["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
}

#[tokio::test]
async fn server_create_and_update_name_the_refused_field() {
    let api = api().await;
    let ok = json!({ "name": "s1", "hostname": "h.example", "user": "u", "password": "pw" });
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cases: Vec<(Value, StatusCode, &str, Option<&str>)> = vec![
        (
            without("name"),
            UNPROCESSABLE,
            "missing_field",
            Some("name"),
        ),
        (
            with("name", json!("bad name")),
            UNPROCESSABLE,
            "validation_failed",
            Some("name"),
        ),
        (
            without("hostname"),
            UNPROCESSABLE,
            "missing_field",
            Some("hostname"),
        ),
        (
            with("hostname", json!("-bad-.example")),
            UNPROCESSABLE,
            "validation_failed",
            Some("hostname"),
        ),
        (
            with("port", json!(0)),
            UNPROCESSABLE,
            "validation_failed",
            Some("port"),
        ),
        (
            with("port", json!(65536)),
            UNPROCESSABLE,
            "validation_failed",
            Some("port"),
        ),
        (
            without("user"),
            UNPROCESSABLE,
            "missing_field",
            Some("user"),
        ),
        (
            with("user", json!("a b")),
            UNPROCESSABLE,
            "validation_failed",
            Some("user"),
        ),
        (
            with("auth_type", json!("telepathy")),
            UNPROCESSABLE,
            "validation_failed",
            Some("auth_type"),
        ),
        (
            without("password"),
            UNPROCESSABLE,
            "validation_failed",
            Some("password"),
        ),
        (
            with("private_key", json!("not a key")),
            UNPROCESSABLE,
            "validation_failed",
            Some("private_key"),
        ),
        (
            with("tags", json!(["ok", "not ok"])),
            UNPROCESSABLE,
            "validation_failed",
            Some("tags"),
        ),
        (
            with("max_concurrency", json!(0)),
            UNPROCESSABLE,
            "validation_failed",
            Some("max_concurrency"),
        ),
        (
            with("pem_file_id", json!("nope")),
            StatusCode::NOT_FOUND,
            "not_found",
            Some("pem_file_id"),
        ),
        (
            with("colour", json!("red")),
            UNPROCESSABLE,
            "invalid_field",
            Some("colour"),
        ),
    ];
    for (body, status, code, field) in cases {
        api.refused(
            Method::POST,
            "/api/v1/servers",
            Some(body),
            status,
            code,
            field,
        )
        .await;
    }
    // The unique name: the constraint maps to its field, on create and on rename.
    api.server("taken").await;
    let (st, b) = api
        .call(
            Method::POST,
            "/api/v1/servers",
            Some(with("name", json!("taken"))),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["code"], "conflict");
    assert_eq!(b["error"]["field"], "name");
    assert_eq!(
        b["error"]["message"],
        "a server named `taken` already exists"
    );
    api.server("other").await;
    let put = |body: Value| (Method::PUT, "/api/v1/servers/other", Some(body));
    let cases: Vec<(Value, StatusCode, &str, Option<&str>)> = vec![
        (
            json!({ "name": "taken" }),
            StatusCode::CONFLICT,
            "conflict",
            Some("name"),
        ),
        (
            json!({ "port": 70000 }),
            UNPROCESSABLE,
            "validation_failed",
            Some("port"),
        ),
        (
            json!({ "name": "" }),
            UNPROCESSABLE,
            "missing_field",
            Some("name"),
        ),
        (
            json!({ "hostname": "a..b" }),
            UNPROCESSABLE,
            "validation_failed",
            Some("hostname"),
        ),
        (
            json!({ "password": "", "auth_type": "password" }),
            UNPROCESSABLE,
            "validation_failed",
            Some("password"),
        ),
        (
            json!({ "tags": ["x y"] }),
            UNPROCESSABLE,
            "validation_failed",
            Some("tags"),
        ),
        (
            json!({ "pem_file_id": "nope" }),
            StatusCode::NOT_FOUND,
            "not_found",
            Some("pem_file_id"),
        ),
        (
            json!({ "bogus": true }),
            UNPROCESSABLE,
            "invalid_field",
            Some("bogus"),
        ),
    ];
    for (body, status, code, field) in cases {
        let (m, uri, b) = put(body);
        api.refused(m, uri, b, status, code, field).await;
    }
    api.refused(
        Method::PUT,
        "/api/v1/servers/missing",
        Some(json!({ "port": 22 })),
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
    // Nothing refused was changed.
    let (st, b) = api.call(Method::GET, "/api/v1/servers/other", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (b["name"].as_str(), b["port"].as_i64()),
        (Some("other"), Some(22))
    );
}

#[tokio::test]
async fn job_list_paging_and_filters_name_the_refused_parameter() {
    let api = api().await;
    let cases: Vec<(&str, StatusCode, &str, Option<&str>)> = vec![
        ("page=0", UNPROCESSABLE, "validation_failed", Some("page")),
        ("limit=0", UNPROCESSABLE, "validation_failed", Some("limit")),
        (
            "limit=201",
            UNPROCESSABLE,
            "validation_failed",
            Some("limit"),
        ),
        (
            "status=sleeping",
            UNPROCESSABLE,
            "validation_failed",
            Some("status"),
        ),
        (
            "sort_by=name",
            UNPROCESSABLE,
            "validation_failed",
            Some("sort_by"),
        ),
        (
            "sort_order=up",
            UNPROCESSABLE,
            "validation_failed",
            Some("sort_order"),
        ),
        (
            "created_after=yesterday",
            UNPROCESSABLE,
            "validation_failed",
            Some("created_after"),
        ),
        (
            "created_before=2026-13-01",
            UNPROCESSABLE,
            "validation_failed",
            Some("created_before"),
        ),
        ("page=abc", StatusCode::BAD_REQUEST, "bad_query", None),
    ];
    for (q, status, code, field) in cases {
        api.refused(
            Method::GET,
            &format!("/api/v1/jobs?{q}"),
            None,
            status,
            code,
            field,
        )
        .await;
    }
    let (st, b) = api
        .call(
            Method::GET,
            "/api/v1/jobs?page=1&limit=200&sort_order=asc",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["pagination"]["limit"], 200);
    assert_eq!(b["pagination"]["has_prev"], false);
    // The stream of a job that does not exist is a JSON 404, not an empty stream.
    api.refused(
        Method::GET,
        "/api/v1/jobs/nope/stream",
        None,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
}

#[tokio::test]
async fn notification_targets_and_retention_validate_and_hide_secrets() {
    let api = api().await;
    let (st, v) = api
        .call(Method::POST, "/api/v1/notifications", Some(json!({ "name": "ops", "url": "https://hooks.example.com/T0/B0/tok?x=1", "events": ["job.failed"] })))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let secret = v["secret"].as_str().unwrap().to_string();
    assert!(
        secret.starts_with("whsec_"),
        "generated secret returned once: {v}"
    );
    assert_eq!(
        v["url"], "https://hooks.example.com/…",
        "the URL's path is hidden"
    );
    let id = v["id"].as_str().unwrap().to_string();
    let (st, v) = api
        .call(Method::GET, &format!("/api/v1/notifications/{id}"), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["has_secret"], true);
    assert!(
        !v.to_string().contains(&secret),
        "the secret is never returned: {v}"
    );
    let (_, v) = api.call(Method::GET, "/api/v1/notifications", None).await;
    assert!(!v.to_string().contains(&secret) && !v.to_string().contains("tok?x=1"));
    let (st, v) = api
        .call(
            Method::POST,
            "/api/v1/notifications",
            Some(json!({ "name": "ops", "url": "https://a.example/", "events": ["job.failed"] })),
        )
        .await;
    assert_eq!(
        (st, v["error"]["field"].as_str()),
        (StatusCode::CONFLICT, Some("name")),
        "{v}"
    );
    for (body, field) in [
        (
            json!({ "name": "x", "url": "https://a.example/", "events": ["job.done"] }),
            "events",
        ),
        (
            json!({ "name": "x", "url": "https://a.example/" }),
            "events",
        ),
        (
            json!({ "name": "x", "url": "ftp://a.example/", "events": ["job.failed"] }),
            "url",
        ),
        (json!({ "name": "x", "events": ["job.failed"] }), "url"),
        (
            json!({ "name": "x", "kind": "email", "events": ["job.failed"] }),
            "to",
        ),
        (
            json!({ "name": "x", "kind": "email", "to": ["not an address"], "events": ["job.failed"] }),
            "to",
        ),
        (
            json!({ "name": "x", "url": "https://a.example/", "events": ["job.failed"], "format": "xml" }),
            "format",
        ),
        (
            json!({ "name": "x", "url": "https://a.example/", "events": ["job.failed"], "filter": { "statuses": ["running"] } }),
            "filter.statuses",
        ),
    ] {
        let (st, v) = api
            .call(Method::POST, "/api/v1/notifications", Some(body.clone()))
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
    }
    let (st, _) = api
        .call(Method::GET, "/api/v1/notifications/nope/deliveries", None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = api
        .call(
            Method::GET,
            &format!("/api/v1/notifications/{id}/deliveries"),
            None,
        )
        .await;
    assert_eq!(
        (st, v["deliveries"].as_array().map(|a| a.len())),
        (StatusCode::OK, Some(0))
    );

    let (st, v) = api
        .call(Method::GET, "/api/v1/settings/retention", None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        v["jobs_days"]["completed"],
        Value::Null,
        "keeps everything by default"
    );
    for (body, field) in [
        (json!({ "jobs_days": { "failed": 0 } }), "jobs_days.failed"),
        (json!({ "output_max_bytes": 10 }), "output_max_bytes"),
        (
            json!({ "export_before_delete": true }),
            "export_before_delete",
        ),
    ] {
        let (st, v) = api
            .call(
                Method::PUT,
                "/api/v1/settings/retention",
                Some(body.clone()),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
    }
    let policy = json!({ "jobs_days": { "completed": 30, "failed": 90, "timed_out": null, "canceled": 7 }, "output_max_bytes": 1048576, "export_before_delete": false });
    let (st, v) = api
        .call(
            Method::PUT,
            "/api/v1/settings/retention",
            Some(policy.clone()),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        api.call(Method::GET, "/api/v1/settings/retention", None)
            .await
            .1,
        policy
    );
    let (st, _) = api
        .call(Method::DELETE, &format!("/api/v1/notifications/{id}"), None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn conflicts_on_delete_list_the_servers_in_details() {
    let api = api().await;
    let (st, cred) = api
        .call(
            Method::POST,
            "/api/v1/credentials",
            Some(json!({ "name": "shared", "password": "pw" })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{cred}");
    let mut ids = vec![];
    for n in ["b-web", "a-web"] {
        let (st, b) = api
            .call(
                Method::POST,
                "/api/v1/servers",
                Some(json!({ "name": n, "hostname": "127.0.0.1", "user": "u",
                    "credential_id": "shared" })),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        ids.push(b["id"].as_str().unwrap().to_string());
    }
    let (st, b) = api
        .call(Method::DELETE, "/api/v1/credentials/shared", None)
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["code"], "in_use", "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("a-web"),
        "{b}"
    );
    // Sorted by name, each with its id.
    assert_eq!(
        b["error"]["details"],
        json!({ "servers": [{ "id": ids[1], "name": "a-web" }, { "id": ids[0], "name": "b-web" }] }),
        "{b}"
    );

    let bastion = api.server("bastion").await;
    let (st, inner) = api
        .call(
            Method::POST,
            "/api/v1/servers",
            Some(
                json!({ "name": "inner", "hostname": "10.0.0.9", "user": "u", "password": "pw",
                "jump_server_id": "bastion" }),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{inner}");
    let (st, b) = api
        .call(Method::DELETE, "/api/v1/servers/bastion", None)
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["field"], "id", "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("inner"),
        "{b}"
    );
    assert_eq!(
        b["error"]["details"],
        json!({ "servers": [{ "id": inner["id"], "name": "inner" }] }),
        "{b}"
    );
    // Errors that document no details carry none.
    let (st, b) = api.call(Method::DELETE, "/api/v1/servers/nope", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{b}");
    assert!(b["error"].get("details").is_none(), "{b}");
    // Once free, both delete.
    let (st, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/servers/{}", inner["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/servers/{}", bastion["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn trusted_ca_patterns_stop_at_the_configured_limit() {
    const CA: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM2fqH3vMZyAidnAUlELBxBde7HiMFOJwqe7r8bnCCkQ ca";
    let pats = |n: usize| (0..n).map(|i| format!("h{i}.example")).collect::<Vec<_>>();
    // The default: 100.
    let api = api().await;
    let (st, b) = api
        .call(
            Method::POST,
            "/api/v1/trusted-cas",
            Some(json!({ "name": "big", "public_key": CA, "patterns": pats(101) })),
        )
        .await;
    assert_eq!(st, UNPROCESSABLE, "{b}");
    assert_eq!(b["error"]["field"], "patterns", "{b}");
    let m = b["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("at most 100") && m.contains("REMORA_MAX_CA_PATTERNS"),
        "{b}"
    );
    let (st, b) = api
        .call(
            Method::POST,
            "/api/v1/trusted-cas",
            Some(json!({ "name": "big", "public_key": CA, "patterns": pats(100) })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");

    // Configured to 3: create and update both refuse a fourth.
    let cfg = ApiConfig {
        max_ca_patterns: 3,
        ..ApiConfig::default()
    };
    let (state, _dir) = state_with(cfg, &[("test", TOKEN, "admin")]).await;
    let api = Api {
        app: app(state),
        _dir,
    };
    let (st, b) = api
        .call(
            Method::POST,
            "/api/v1/trusted-cas",
            Some(json!({ "name": "small", "public_key": CA, "patterns": pats(4) })),
        )
        .await;
    assert_eq!(st, UNPROCESSABLE, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 3"),
        "{b}"
    );
    let (st, b) = api
        .call(
            Method::POST,
            "/api/v1/trusted-cas",
            Some(json!({ "name": "small", "public_key": CA, "patterns": pats(3) })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let (st, b) = api
        .call(
            Method::PUT,
            &format!("/api/v1/trusted-cas/{}", b["id"].as_str().unwrap()),
            Some(json!({ "patterns": pats(4) })),
        )
        .await;
    assert_eq!(st, UNPROCESSABLE, "{b}");
    assert_eq!(b["error"]["field"], "patterns", "{b}");
}
