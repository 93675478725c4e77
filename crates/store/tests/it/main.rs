//! Every store query, on SQLite and on PostgreSQL: one module per aggregate, shared fixtures here.

use remora_domain::{Job, JobSpec, JobStatus, Server};
use remora_store::{NewServer, Store};

pub async fn sqlite() -> (Store, tempfile::TempDir) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::connect(&remora_store::default_url(d.path()))
        .await
        .unwrap();
    (s, d)
}

/// A store on a fresh PostgreSQL database; `None` (said on stderr) without
/// `REMORA_TEST_PG_URL`, which under CI=true fails instead.
pub async fn postgres() -> Option<(Store, remora_testkit::pg::PgDb)> {
    let Some(db) = remora_testkit::pg::database().unwrap() else {
        eprintln!("skipped: REMORA_TEST_PG_URL is not set");
        return None;
    };
    let s = Store::connect(&db.url).await.unwrap();
    Some((s, db))
}

/// `on_both!(f)`: tests `f::on_sqlite` and `f::on_postgres`, which run the
/// scenario `async fn f(&Store)` on a fresh database of each kind.
macro_rules! on_both {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test]
            async fn on_sqlite() {
                let (s, _d) = crate::sqlite().await;
                super::$scenario(&s).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                let Some((s, _db)) = crate::postgres().await else {
                    return;
                };
                super::$scenario(&s).await;
                s.close().await;
            }
        }
    };
}

mod audit;
mod batch_read;
mod connect;
mod credentials;
mod job_list;
mod jobs;
mod notifications;
mod output;
mod retention;
mod schedules;
mod secrets;
mod servers;
mod stats;
mod templates;
mod tokens;
mod workers;
mod writer;

/// Servers `alpha` and `beta` (max_concurrency 1) and three queued jobs,
/// created at 1000 and 2000 on alpha and 3000 on beta.
pub async fn three_jobs(s: &Store) -> (Server, Server, [Job; 3]) {
    let a = s.insert_server(&server("alpha")).await.unwrap();
    let b = s.insert_server(&server("beta")).await.unwrap();
    let jobs = [
        job(&a.id, 1000, "echo one"),
        job(&a.id, 2000, "echo TWO"),
        job(&b.id, 3000, "uptime 100%"),
    ];
    for j in &jobs {
        s.insert_job(j).await.unwrap();
    }
    (a, b, jobs)
}

/// A server without a concurrency limit (max_concurrency 0).
pub async fn unlimited_server(s: &Store, name: &str) -> Server {
    s.insert_server(&NewServer {
        max_concurrency: 0,
        ..server(name)
    })
    .await
    .unwrap()
}

pub fn server(name: &str) -> NewServer {
    NewServer {
        name: name.into(),
        hostname: "127.0.0.1".into(),
        port: 22,
        user: "u".into(),
        password_enc: Some(vec![1, 2, 3]),
        is_active: true,
        tags: vec!["web".into()],
        max_concurrency: 1,
        ..Default::default()
    }
}

pub fn job(server_id: &str, created_at: i64, cmd: &str) -> Job {
    Job {
        id: remora_domain::new_id(),
        spec: JobSpec::Command {
            command: cmd.into(),
            args: vec!["a b".into()],
        },
        server_id: server_id.into(),
        batch_id: None,
        status: JobStatus::Queued,
        priority: 5,
        timeout: 0,
        exit_code: None,
        exit_signal: None,
        error: None,
        error_code: None,
        attempt: 0,
        max_retries: 1,
        worker_id: None,
        cancel_requested: false,
        created_at,
        started_at: None,
        finished_at: None,
        stdout_bytes: 0,
        stderr_bytes: 0,
        truncated: false,
        // Every stored field set, so round trips check the options columns too.
        options: remora_domain::JobOptions {
            pty: true,
            sudo: true,
            become_user: Some("deploy".into()),
            env: [("A_1".to_string(), "x'y $z".to_string())].into(),
        },
        template_id: None,
        template_version: None,
        schedule_id: None,
    }
}
