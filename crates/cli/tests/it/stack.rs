//! A whole Remora stack in the test process: netqueue, API and worker on
//! ephemeral loopback ports, on SQLite in a temp dir or on a PostgreSQL
//! database from the testkit. Stopped on drop.

use remora_store::{Store, Vault};
use remora_testkit::sshd::SshHost;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[allow(dead_code)]
pub struct Stack {
    pub url: String,
    pub token: String,
    pub store: Store,
    pub queue_addr: String,
    /// Token of the stack's queue, for a worker process started beside it.
    pub queue_token: String,
    /// The database URL (SQLite in `dir`, or PostgreSQL).
    pub db_url: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    pub dir: tempfile::TempDir,
    _pg: Option<remora_testkit::pg::PgDb>,
}

pub enum Db {
    Sqlite,
    Postgres(remora_testkit::pg::PgDb),
}

impl Db {
    pub fn from_env() -> Db {
        match std::env::var("REMORA_TEST_DB").as_deref() {
            Ok("postgres") => Db::Postgres(
                remora_testkit::pg::database().unwrap().expect("REMORA_TEST_DB=postgres needs REMORA_TEST_PG_URL (run through scripts/with-postgres.sh)"),
            ),
            _ => Db::Sqlite,
        }
    }
}

impl Stack {
    /// A stack on the database `REMORA_TEST_DB` names: SQLite by default,
    /// PostgreSQL with `REMORA_TEST_DB=postgres` (`make test` runs the API
    /// and CLI suites both ways).
    pub async fn new() -> Stack {
        Stack::start(Db::from_env(), remora_worker::WorkerConfig::default()).await
    }

    pub async fn start(db: Db, wcfg: remora_worker::WorkerConfig) -> Stack {
        let cfg = remora_api::ApiConfig {
            worker_down_after: Duration::from_secs(5),
            ..Default::default()
        };
        Stack::start_with(db, wcfg, cfg).await
    }

    pub async fn start_with(
        db: Db,
        wcfg: remora_worker::WorkerConfig,
        cfg: remora_api::ApiConfig,
    ) -> Stack {
        Stack::start_opts(db, Some(wcfg), cfg).await
    }

    /// Like [`Stack::start_with`]; `wcfg: None` starts no worker in the test
    /// process (tests then run the `remora-worker` binary against
    /// [`Stack::dir`], which holds the SQLite database and the master key).
    pub async fn start_opts(
        db: Db,
        wcfg: Option<remora_worker::WorkerConfig>,
        cfg: remora_api::ApiConfig,
    ) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg) = match db {
            Db::Sqlite => (remora_store::default_url(dir.path()), None),
            Db::Postgres(p) => (p.url.clone(), Some(p)),
        };
        let store = Store::connect(&url).await.expect("database");
        let vault = Vault::load(None, dir.path()).unwrap();
        let shutdown = CancellationToken::new();

        let qtoken = remora_api::auth::generate_token();
        let ql = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let queue_addr = ql.local_addr().unwrap().to_string();
        let qcfg = remora_netqueue::ServerConfig {
            token: Some(qtoken.clone()),
            max_attempts: 1000,
            ..Default::default()
        };
        tokio::spawn(remora_netqueue::run(ql, qcfg, shutdown.clone()));
        let queue = remora_netqueue::Client::connect(&queue_addr, Some(qtoken.clone()))
            .await
            .unwrap();

        let token = remora_api::auth::generate_token();
        store
            .insert_token("test", &remora_api::auth::hash_token(&token), "admin")
            .await
            .unwrap();
        let al = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_url = format!("http://{}", al.local_addr().unwrap());
        let state = remora_api::AppState::new(store.clone(), vault.clone(), queue.clone(), cfg);
        tokio::spawn(remora_api::run(al, state, shutdown.clone()));

        if let Some(mut wcfg) = wcfg {
            wcfg.heartbeat_interval = Duration::from_secs(1);
            wcfg.kill_grace = Duration::from_secs(2);
            wcfg.ssh.connect_timeout = Duration::from_secs(5);
            tokio::spawn(remora_worker::run(
                store.clone(),
                vault,
                queue,
                wcfg,
                shutdown.clone(),
            ));
        }

        Stack {
            url: api_url,
            token,
            store,
            queue_addr,
            queue_token: qtoken,
            db_url: url,
            http: reqwest::Client::new(),
            shutdown,
            dir,
            _pg: pg,
        }
    }

    /// The PostgreSQL database of a stack on PostgreSQL.
    pub fn pg(&self) -> Option<&remora_testkit::pg::PgDb> {
        self._pg.as_ref()
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut rb = self
            .http
            .request(method, format!("{}{}", self.url, path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> Value {
        let (st, v) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(st, 200, "GET {path}: {v}");
        v
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Register `host` (key auth) under `name`; returns the server id.
    pub async fn add_server(&self, name: &str, host: &SshHost) -> String {
        let (st, v) = self
            .post("/api/v1/servers", json!({ "name": name, "hostname": host.host(), "port": host.port(), "user": host.user(), "private_key": host.private_key() }))
            .await;
        assert_eq!(st, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// Register a server that is never connected to (jobs for it stay queued without a
    /// worker); returns the server id.
    pub async fn add_server_raw(&self, name: &str) -> String {
        let (st, v) = self
            .post("/api/v1/servers", json!({ "name": name, "hostname": "127.0.0.1", "port": 1, "user": "nobody", "password": "unused" }))
            .await;
        assert_eq!(st, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    pub async fn submit(&self, server: &str, command: &str) -> String {
        let (st, v) = self
            .post(
                "/api/v1/jobs",
                json!({ "server_id": server, "command": command }),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// Poll the job until `pred` holds, or panic after `within`.
    pub async fn wait_job(
        &self,
        id: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let j = self.get(&format!("/api/v1/jobs/{id}")).await;
            if pred(&j) {
                return j;
            }
            assert!(
                start.elapsed() < within,
                "job {id} did not reach the expected state within {within:?}: {j}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_final(&self, id: &str, within: Duration) -> Value {
        self.wait_job(id, within, |j| {
            !matches!(j["status"].as_str(), Some("queued") | Some("running"))
        })
        .await
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
