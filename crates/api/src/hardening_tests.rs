//! Hostile input and faults from issue 14, each closed with a test that fails
//! without its fix: viewer checks, bootstrap token, metrics labels, CORS `*`,
//! page overflow, tokens in URLs, unique OpenAPI operation ids.

use crate::{app, auth, ApiConfig, AppState};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

const ADMIN: &str = "rmr_hardening_admin";
const VIEWER: &str = "rmr_hardening_viewer";

struct Api {
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn api_with(cfg: ApiConfig) -> Api {
    let (state, dir) = crate::tests::state_with(
        cfg,
        &[("admin", ADMIN, "admin"), ("viewer", VIEWER, "viewer")],
    )
    .await;
    Api { state, _dir: dir }
}

impl Api {
    async fn raw(&self, req: Request<Body>) -> axum::response::Response {
        app(self.state.clone()).oneshot(req).await.unwrap()
    }

    async fn call(
        &self,
        token: &str,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        };
        let resp = self.raw(req.unwrap()).await;
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

/// A port that refuses connections: a check against it records `unreachable`.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn viewer_reads_stored_checks_and_cannot_run_them() {
    let api = api_with(ApiConfig::default()).await;
    let (st, s) = api
        .call(
            ADMIN,
            Method::POST,
            "/api/v1/servers",
            Some(json!({ "name": "h", "hostname": "127.0.0.1", "port": closed_port(), "user": "u", "password": "pw" })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{s}");
    let id = s["id"].as_str().unwrap().to_string();
    // GET reads only: nothing logs in, nothing is recorded.
    for uri in [
        format!("/api/v1/servers/{id}/status"),
        "/api/v1/servers/status".into(),
    ] {
        let (st, b) = api.call(VIEWER, Method::GET, &uri, None).await;
        assert_eq!(st, StatusCode::OK, "{uri} {b}");
        let r = if b["servers"].is_array() {
            b["servers"][0].clone()
        } else {
            b
        };
        assert_eq!(r["status"], "unchecked", "{uri} {r}");
        assert_eq!(r["checked_at"], Value::Null, "{uri} {r}");
    }
    let (_, srv) = api
        .call(VIEWER, Method::GET, &format!("/api/v1/servers/{id}"), None)
        .await;
    assert_eq!(srv["last_status"], Value::Null, "a GET ran a check: {srv}");
    // Running checks is POST: refused to a viewer, allowed to an operator and audited.
    for uri in [
        format!("/api/v1/servers/{id}/status"),
        "/api/v1/servers/status".into(),
    ] {
        let (st, b) = api.call(VIEWER, Method::POST, &uri, None).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{uri} {b}");
    }
    let (st, r) = api
        .call(
            ADMIN,
            Method::POST,
            &format!("/api/v1/servers/{id}/status"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "unreachable", "{r}");
    let (st, b) = api
        .call(ADMIN, Method::POST, "/api/v1/servers/status", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["servers"][0]["status"], "unreachable", "{b}");
    // The stored check is what GET now answers.
    let (_, r) = api
        .call(
            VIEWER,
            Method::GET,
            &format!("/api/v1/servers/{id}/status"),
            None,
        )
        .await;
    assert_eq!(r["status"], "unreachable", "{r}");
    assert!(r["checked_at"].is_string(), "{r}");
    let audit = api.state.store.list_audit(100).await.unwrap();
    let audit = format!("{audit:?}");
    assert_eq!(audit.matches("server.check").count(), 2, "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_pinned_meanwhile_fails_the_check() {
    let host = remora_testkit::require!(remora_testkit::sshd::SshHost::start());
    let api = api_with(ApiConfig::default()).await;
    let (st, s) = api
        .call(
            ADMIN,
            Method::POST,
            "/api/v1/servers",
            Some(json!({ "name": "h", "hostname": host.host(), "port": host.port(), "user": host.user(), "password": host.password() })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{s}");
    let id = s["id"].as_str().unwrap();
    // The check read the server before another request pinned a different key.
    let stale = api.state.store.get_server(id).await.unwrap().unwrap();
    assert!(stale.host_key_fingerprint.is_none());
    api.state
        .store
        .set_host_key(id, Some("SHA256:someoneelse"))
        .await
        .unwrap();
    let r = crate::checks::check(&api.state, &stale, false).await;
    assert!(!r.ok, "{r:?}");
    assert_eq!(r.status, "host_key_mismatch", "{r:?}");
    let now = api.state.store.get_server(id).await.unwrap().unwrap();
    assert_eq!(
        now.host_key_fingerprint.as_deref(),
        Some("SHA256:someoneelse")
    );
    // Unpinned and uncontested, the check pins the presented key.
    api.state.store.set_host_key(id, None).await.unwrap();
    let r = crate::checks::check(&api.state, &stale, false).await;
    assert!(r.ok, "{r:?}");
    assert_eq!(r.host_key_status.as_deref(), Some("new"));
    assert_eq!(r.host_key_fingerprint, Some(host.host_key_fingerprint()));
}

/// Issue 14.11: a generated admin token is written to a 0600 file and the process says where,
/// never the token (what `remora-api` prints goes to docker's and journald's logs).
#[tokio::test]
async fn a_generated_admin_token_is_not_printed_only_its_file() {
    let api = api_with(ApiConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let t = auth::seed_admin(&api.state.store, None, dir.path())
        .await
        .unwrap()
        .expect("a token is generated on first start");
    let notice = auth::generated_token_notice(dir.path());
    assert!(!notice.contains(&t), "{notice}");
    let file = dir.path().join("admin.token");
    assert!(notice.contains(&file.display().to_string()), "{notice}");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), t);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // And remora-api prints the notice (not the token) when it generated one.
    let main = include_str!("main.rs");
    assert!(
        main.contains("generated_token_notice"),
        "main.rs prints the notice"
    );
}

#[tokio::test]
async fn a_revoked_bootstrap_token_stays_revoked_and_the_api_starts() {
    let api = api_with(ApiConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = &api.state.store;
    let t = "rmr_bootstrap_token_from_env";
    auth::seed_admin(store, Some(t), dir.path()).await.unwrap();
    let (id, _) = store
        .find_token(&auth::hash_token(t))
        .await
        .unwrap()
        .unwrap();
    assert!(store.revoke_token(&id).await.unwrap());
    // The next start seeds again: no UNIQUE failure, and the token stays revoked.
    auth::seed_admin(store, Some(t), dir.path()).await.unwrap();
    assert!(store
        .find_token(&auth::hash_token(t))
        .await
        .unwrap()
        .is_none());
    // The same for a generated token read back from admin.token.
    let g = auth::seed_admin(store, None, dir.path())
        .await
        .unwrap()
        .unwrap();
    let (gid, _) = store
        .find_token(&auth::hash_token(&g))
        .await
        .unwrap()
        .unwrap();
    assert!(store.revoke_token(&gid).await.unwrap());
    assert!(auth::seed_admin(store, None, dir.path())
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_token(&auth::hash_token(&g))
        .await
        .unwrap()
        .is_none());
    // A new value bootstraps a new admin token.
    auth::seed_admin(store, Some("rmr_a_new_value"), dir.path())
        .await
        .unwrap();
    assert!(store
        .find_token(&auth::hash_token("rmr_a_new_value"))
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn unknown_methods_share_one_metrics_label() {
    let api = api_with(ApiConfig::default()).await;
    for m in ["M1", "M2", "FOO"] {
        let req = Request::builder()
            .method(Method::from_bytes(m.as_bytes()).unwrap())
            .uri("/health")
            .body(Body::empty())
            .unwrap();
        api.raw(req).await;
    }
    let resp = api
        .raw(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    let text = String::from_utf8(
        axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    for m in ["M1", "M2", "FOO"] {
        assert!(!text.contains(&format!("method=\"{m}\"")), "{text}");
    }
    assert!(text.contains("method=\"other\""), "{text}");
}

#[tokio::test]
async fn cors_star_allows_any_origin() {
    let api = api_with(ApiConfig {
        cors_origins: vec!["*".into()],
        ..Default::default()
    })
    .await;
    let resp = api
        .raw(
            Request::get("/health")
                .header(header::ORIGIN, "http://elsewhere.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .map(|v| v.to_str().unwrap().to_string()),
        Some("*".into())
    );
}

#[tokio::test]
async fn a_huge_page_is_refused_not_overflowed() {
    let api = api_with(ApiConfig::default()).await;
    for page in ["9223372036854775807", "1000001"] {
        let (st, b) = api
            .call(
                ADMIN,
                Method::GET,
                &format!("/api/v1/jobs?page={page}&limit=200"),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(b["error"]["field"], "page", "{b}");
    }
    let (st, b) = api
        .call(
            ADMIN,
            Method::GET,
            "/api/v1/jobs?page=1000000&limit=200",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["jobs"], json!([]));
}

#[tokio::test]
async fn a_token_in_the_url_is_refused() {
    let api = api_with(ApiConfig::default()).await;
    for uri in [
        format!("/api/v1/events?access_token={ADMIN}"),
        format!("/api/v1/jobs/x/stream?access_token={ADMIN}"),
    ] {
        let resp = api
            .raw(Request::get(&uri).body(Body::empty()).unwrap())
            .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{uri}");
    }
}

#[test]
fn openapi_operation_ids_are_unique() {
    let doc = serde_json::to_value(crate::openapi()).unwrap();
    let mut seen = std::collections::BTreeMap::<String, String>::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                panic!("{method} {path} has no operationId");
            };
            if let Some(prev) = seen.insert(id.to_string(), format!("{method} {path}")) {
                panic!("operationId {id} used by {prev} and {method} {path}");
            }
        }
    }
    assert!(seen.len() > 30, "{seen:?}");
}

/// Item 2: an encrypted OpenSSH key asking for 2^31 bcrypt rounds is a 422
/// naming the cap, at once, wherever a key enters: server create, server
/// update and PEM upload; and the cap is `ApiConfig::key_limits`
/// (`REMORA_MAX_KDF_ROUNDS`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_asking_for_too_many_bcrypt_rounds_are_refused_everywhere_at_once() {
    use remora_testkit::evil_keys::{self, PASSPHRASE};
    let Some(evil) = remora_testkit::skip_or_panic(evil_keys::key_with_rounds(1 << 31)) else {
        return;
    };
    let api = api_with(ApiConfig::default()).await;
    let started = std::time::Instant::now();
    let (st, v) = api
        .call(
            ADMIN,
            Method::POST,
            "/api/v1/servers",
            Some(json!({ "name": "k", "hostname": "127.0.0.1", "user": "u", "private_key": evil, "passphrase": PASSPHRASE })),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "private_key", "{v}");
    let msg = v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("2147483648 bcrypt rounds; at most 1024"),
        "{msg}"
    );
    assert!(msg.contains("REMORA_MAX_KDF_ROUNDS"), "{msg}");

    let (st, v) = api
        .call(
            ADMIN,
            Method::POST,
            "/api/v1/servers",
            Some(json!({ "name": "k", "hostname": "127.0.0.1", "user": "u", "password": "pw" })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = api
        .call(
            ADMIN,
            Method::PUT,
            "/api/v1/servers/k",
            Some(json!({ "private_key": evil, "passphrase": PASSPHRASE })),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "private_key", "{v}");

    let boundary = "remora-test-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"k\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n{evil}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"passphrase\"\r\n\r\n{PASSPHRASE}\r\n\
         --{boundary}--\r\n"
    );
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/pem-files")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap();
    let resp = api.raw(req).await;
    let st = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "file", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("2147483648 bcrypt rounds"),
        "{v}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // The cap is configurable: an ordinary 16-round key is refused under a cap of 8.
    let key = evil_keys::encrypted_key().unwrap();
    let mut cfg = ApiConfig::default();
    cfg.key_limits.max_kdf_rounds = 8;
    let strict = api_with(cfg).await;
    let (st, v) = strict
        .call(
            ADMIN,
            Method::POST,
            "/api/v1/servers",
            Some(json!({ "name": "k2", "hostname": "127.0.0.1", "user": "u", "private_key": key, "passphrase": PASSPHRASE })),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (st, v) = api
        .call(
            ADMIN,
            Method::POST,
            "/api/v1/servers",
            Some(json!({ "name": "k2", "hostname": "127.0.0.1", "user": "u", "private_key": key, "passphrase": PASSPHRASE })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

/// `GET /me` tells each token its own role (the dashboard hides write actions from viewers).
#[tokio::test]
async fn me_reports_the_callers_role() {
    let api = api_with(ApiConfig::default()).await;
    for (token, role) in [(ADMIN, "admin"), (VIEWER, "viewer")] {
        let (st, b) = api.call(token, Method::GET, "/api/v1/me", None).await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert_eq!(b["role"], role, "{b}");
        assert!(b["token_id"].as_str().is_some_and(|t| !t.is_empty()), "{b}");
    }
    let (st, _) = api
        .call("rmr_nobody", Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

/// Tokens read valid are trusted for `auth_cache_ms` (REMORA_AUTH_CACHE_MS): a revoke through
/// the API counts at once; a revoke this process did not make (another API instance: here the
/// store directly) counts once the entry is older than the TTL, and never before it was read.
#[tokio::test]
async fn a_revoked_token_is_refused_at_once_here_and_within_the_cache_ttl_elsewhere() {
    let api = api_with(ApiConfig {
        auth_cache_ms: 300,
        ..ApiConfig::default()
    })
    .await;
    let mint = |name: &'static str| {
        let api = &api;
        async move {
            let (st, t) = api
                .call(
                    ADMIN,
                    Method::POST,
                    "/api/v1/tokens",
                    Some(json!({ "name": name, "role": "viewer" })),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{t}");
            (
                t["id"].as_str().unwrap().to_string(),
                t["token"].as_str().unwrap().to_string(),
            )
        }
    };
    // Revoked through the API: refused on the very next request, though it was just cached.
    let (id, tok) = mint("here").await;
    let (st, _) = api.call(&tok, Method::GET, "/api/v1/servers", None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, b) = api
        .call(ADMIN, Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
    let (st, _) = api.call(&tok, Method::GET, "/api/v1/servers", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // Revoked elsewhere: refused once the cached entry is older than the TTL.
    let (id, tok) = mint("elsewhere").await;
    let (st, _) = api.call(&tok, Method::GET, "/api/v1/servers", None).await;
    assert_eq!(st, StatusCode::OK);
    let revoked = std::time::Instant::now();
    assert!(api.state.store.revoke_token(&id).await.unwrap());
    let deadline = revoked + std::time::Duration::from_secs(10);
    loop {
        // Taken before the request: the cached entry is older than this when it is checked.
        let since = revoked.elapsed();
        let (st, _) = api.call(&tok, Method::GET, "/api/v1/servers", None).await;
        if st == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(st, StatusCode::OK);
        assert!(
            since < std::time::Duration::from_millis(300),
            "a revoked token was still accepted {since:?} after the revoke (TTL 300 ms)"
        );
        assert!(std::time::Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
    // An unknown token is never cached as valid.
    let (st, _) = api
        .call("rmr_never_issued", Method::GET, "/api/v1/servers", None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}
