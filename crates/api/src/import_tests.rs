//! Inventory import and host-key review through `app(state)` on SQLite and (with
//! `REMORA_TEST_PG_URL`) PostgreSQL: dry runs write nothing, a second import changes nothing, a
//! bad line applies nothing, known_hosts pins, a jump host cannot be deleted, bulk accept.

use crate::{app, auth, ApiConfig, AppState};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt;

const TOKEN: &str = "rmr_import_test_token";
const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM2fqH3vMZyAidnAUlELBxBde7HiMFOJwqe7r8bnCCkQ";

const KEY_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO0HVjb439FgT8IDrJ59YL2139SlNaelLBCESk5t/+iJ";

struct Api {
    app: Router,
    state: AppState,
}

async fn api_on(url: &str) -> Api {
    let store = remora_store::Store::connect(url).await.unwrap();
    store
        .insert_token("t", &auth::hash_token(TOKEN), "admin")
        .await
        .unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    let queue = remora_netqueue::Client::connect_lazy(&addr, None)
        .await
        .unwrap();
    let state = AppState::new(
        store,
        remora_store::Vault::new([9u8; 32]),
        queue,
        ApiConfig::default(),
    );
    Api {
        app: app(state.clone()),
        state,
    }
}

impl Api {
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
        let resp = self.app.clone().oneshot(req.unwrap()).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 8 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn import(&self, format: &str, content: &str, dry: bool) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/api/v1/servers/import",
            Some(json!({
                "format": format, "content": content, "dry_run": dry,
                "defaults": { "user": "deploy", "password": "pw", "tags": ["imported"] }
            })),
        )
        .await
    }

    async fn servers(&self) -> Vec<Value> {
        let (st, b) = self.call(Method::GET, "/api/v1/servers", None).await;
        assert_eq!(st, StatusCode::OK);
        b["servers"].as_array().unwrap().clone()
    }

    async fn by_name(&self, name: &str) -> Value {
        let (st, b) = self
            .call(Method::GET, &format!("/api/v1/servers/{name}"), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{name}: {b}");
        b
    }
}

const SSH_CONFIG: &str = "\
Host bastion
    HostName 192.0.2.1
    User jump
Host inner
    HostName 10.9.0.1
    ProxyJump bastion
Host deep
    HostName 10.9.0.2
    Port 2222
    ProxyJump bastion,inner
    IdentityFile ~/.ssh/deep_key
Host *
    User ops
";

fn counts(b: &Value) -> (u64, u64, u64, u64) {
    (
        b["created"].as_u64().unwrap(),
        b["updated"].as_u64().unwrap(),
        b["unchanged"].as_u64().unwrap(),
        b["skipped"].as_u64().unwrap(),
    )
}

async fn scenario(url: &str) {
    let api = api_on(url).await;

    // A dry run reports and writes nothing.
    let (st, b) = api.import("ssh_config", SSH_CONFIG, true).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(counts(&b), (3, 0, 0, 0), "{b}");
    assert_eq!(b["applied"], false);
    assert!(api.servers().await.is_empty(), "a dry run wrote servers");
    let deep = b["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "deep")
        .unwrap()
        .clone();
    assert_eq!(deep["line"], 7);
    assert!(
        deep["reasons"]
            .to_string()
            .contains("identity_file ~/.ssh/deep_key"),
        "{deep}"
    );

    // The import itself, with jump hosts resolved by name and the chain `bastion,inner`.
    let (st, b) = api.import("ssh_config", SSH_CONFIG, false).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(counts(&b), (3, 0, 0, 0), "{b}");
    assert_eq!(b["applied"], true);
    let (bastion, inner, deep) = (
        api.by_name("bastion").await,
        api.by_name("inner").await,
        api.by_name("deep").await,
    );
    assert_eq!(bastion["user"], "jump");
    assert_eq!(inner["user"], "ops", "Host * fills in the user");
    assert_eq!(deep["port"], 2222);
    assert_eq!(inner["jump_server_id"], bastion["id"]);
    assert_eq!(deep["jump_server_id"], inner["id"]);
    assert_eq!(bastion["jump_server_id"], Value::Null);
    assert_eq!(deep["tags"], json!(["imported"]));
    assert_eq!(deep["has_password"], true, "defaults carry the auth");

    // A second import of the same file changes nothing.
    let (st, b) = api.import("ssh_config", SSH_CONFIG, false).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(counts(&b), (0, 0, 3, 0), "{b}");
    assert_eq!(api.by_name("deep").await["updated_at"], deep["updated_at"]);

    // A changed file updates what changed, keeping the credentials.
    let changed = SSH_CONFIG.replace("Port 2222", "Port 2200");
    let (st, b) = api.import("ssh_config", &changed, false).await;
    assert_eq!(counts(&b), (0, 1, 2, 0), "{st} {b}");
    let row = b["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "update")
        .unwrap()
        .clone();
    assert_eq!(row["name"], "deep");
    assert!(
        row["reasons"][0]
            .as_str()
            .unwrap()
            .contains("port 2222 → 2200"),
        "{row}"
    );
    let deep = api.by_name("deep").await;
    assert_eq!(deep["port"], 2200);
    assert_eq!(deep["has_password"], true);

    // A bad line: reported with its number, nothing applied (not even the good rows).
    let ini = "[web]\nweb1 ansible_host=10.1.0.1\nweb2 ansible_host=10.1.0.2 ansible_port=70000\n[db]\ndb1 ansible_host=10.2.0.1 ansible_user=pg\ninner ansible_port=2022\n";
    let before = api.servers().await.len();
    let (st, b) = api.import("ansible", ini, false).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["applied"], false);
    assert_eq!(b["errors"][0]["line"], 3, "{b}");
    assert!(b["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("70000"));
    assert_eq!(
        api.servers().await.len(),
        before,
        "a failed import wrote servers"
    );
    assert_eq!(api.by_name("inner").await["port"], 22);
    // Fixed, it applies: groups become tags, an existing server is updated.
    let ini = ini.replace("70000", "22");
    let (st, b) = api.import("ansible", &ini, false).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["format"], "ansible_ini");
    assert_eq!(counts(&b), (3, 1, 0, 0), "{b}");
    assert_eq!(api.by_name("db1").await["tags"], json!(["db", "imported"]));
    assert_eq!(api.by_name("db1").await["user"], "pg");
    let inner = api.by_name("inner").await;
    assert_eq!(inner["port"], 2022);
    assert_eq!(inner["tags"], json!(["db", "imported"]));
    assert_eq!(
        inner["jump_server_id"], bastion["id"],
        "no ProxyJump keeps the jump host"
    );

    // Unknown ProxyJump and a missing user are line errors.
    let csv = "name,hostname,jump\nc1,10.3.0.1,nowhere\n";
    let (st, b) = api.import("csv", csv, false).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["errors"][0]["line"], 2);
    assert!(b["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("nowhere"));
    let (st, b) = api
        .call(
            Method::POST,
            "/api/v1/servers/import",
            Some(json!({"format": "csv", "content": "name\nlonely\n", "defaults": {"password": "x"}})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["errors"][0]["line"], 2);
    assert!(
        b["errors"][0]["message"].as_str().unwrap().contains("user"),
        "{b}"
    );
    let (st, b) = api.import("toml", "x", false).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b["error"]["field"], "format");

    // The store applies an import in one transaction: a failing op leaves nothing behind.
    let dup = remora_store::NewServer {
        name: "bastion".into(),
        hostname: "h".into(),
        port: 22,
        user: "u".into(),
        is_active: true,
        max_concurrency: 1,
        ..Default::default()
    };
    let fresh = remora_store::NewServer {
        name: "fresh".into(),
        ..dup.clone()
    };
    let ops = [
        remora_store::ImportOp::Create {
            id: remora_domain::new_id(),
            server: fresh,
            jump_server_id: None,
            host_key: None,
        },
        remora_store::ImportOp::Create {
            id: remora_domain::new_id(),
            server: dup,
            jump_server_id: None,
            host_key: None,
        },
    ];
    assert!(api.state.store.apply_import(&ops).await.is_err());
    assert!(api
        .state
        .store
        .get_server_by_name("fresh")
        .await
        .unwrap()
        .is_none());

    // known_hosts pins servers that have no pin, with the time it was first seen.
    let fp_a = remora_ssh::trust::parse_public_key(KEY_A)
        .unwrap()
        .fingerprint(russh::keys::HashAlg::Sha256)
        .to_string();
    let kh = format!("192.0.2.1 {KEY_A}\n[10.9.0.2]:2200 {KEY_A}\n198.51.100.7 {KEY_A}\n");
    let (st, b) = api.import("known_hosts", &kh, true).await;
    assert_eq!(counts(&b), (0, 2, 0, 0), "{st} {b}");
    assert_eq!(
        api.by_name("bastion").await["host_key_fingerprint"],
        Value::Null
    );
    let (st, b) = api.import("known_hosts", &kh, false).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(counts(&b), (0, 2, 0, 0), "{b}");
    assert_eq!(b["warnings"][0]["line"], 3, "{b}");
    let bastion = api.by_name("bastion").await;
    assert_eq!(bastion["host_key_fingerprint"], fp_a.as_str());
    assert!(bastion["host_key_first_seen_at"].is_string(), "{bastion}");
    assert_eq!(
        api.by_name("deep").await["host_key_fingerprint"],
        fp_a.as_str()
    );
    let (_, b) = api.import("known_hosts", &kh, false).await;
    assert_eq!(counts(&b), (0, 0, 2, 0), "{b}");
    // A different key in the file does not replace a pin.
    let (_, b) = api
        .import("known_hosts", &format!("192.0.2.1 {KEY_B}\n"), false)
        .await;
    assert_eq!(counts(&b), (0, 0, 0, 1), "{b}");
    assert!(b["rows"][0]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("kept"));
    assert_eq!(
        api.by_name("bastion").await["host_key_fingerprint"],
        fp_a.as_str()
    );

    // A server others jump through cannot be deleted.
    let (st, b) = api
        .call(Method::DELETE, "/api/v1/servers/bastion", None)
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(msg.contains("inner"), "{msg}");
    let (st, _) = api.call(Method::DELETE, "/api/v1/servers/deep", None).await;
    assert_eq!(
        st,
        StatusCode::NO_CONTENT,
        "a server nobody jumps through can go"
    );

    // Bulk accept: one bad item changes nothing; then all are pinned and audited.
    let fp_b = "SHA256:".to_string() + &"B".repeat(43);
    let (st, b) = api
        .call(
            Method::POST,
            "/api/v1/servers/host-keys/accept",
            Some(json!({"keys": [{"server": "db1", "fingerprint": fp_b}, {"server": "web1", "fingerprint": "MD5:aa"}]})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(
        api.by_name("db1").await["host_key_fingerprint"],
        Value::Null
    );
    let (st, b) = api
        .call(
            Method::POST,
            "/api/v1/servers/host-keys/accept",
            Some(json!({"keys": [{"server": "db1", "fingerprint": fp_b}, {"server": "bastion", "fingerprint": fp_b}]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["accepted"], 2);
    assert_eq!(
        api.by_name("db1").await["host_key_fingerprint"],
        fp_b.as_str()
    );
    assert_eq!(
        api.by_name("bastion").await["host_key_fingerprint"],
        fp_b.as_str()
    );
    let audit = api.state.store.list_audit(100).await.unwrap();
    let accepts = audit
        .iter()
        .filter(|a| a.action == "server.host_key.accept")
        .count();
    assert_eq!(accepts, 2);
    assert!(audit.iter().any(|a| a.action == "server.import"));
}

#[tokio::test]
async fn import_and_host_key_review_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scenario(&remora_store::default_url(dir.path())).await;
}

#[tokio::test]
async fn import_and_host_key_review_on_postgres() {
    let Some(db) = remora_testkit::pg::database().unwrap() else {
        eprintln!("skipped: REMORA_TEST_PG_URL is not set (scripts/with-postgres.sh)");
        return;
    };
    scenario(&db.url).await;
}
