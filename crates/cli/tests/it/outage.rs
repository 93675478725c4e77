//! Issue 14 item 4: the database unavailable for 60 s in the middle of a
//! job (SQLite: another connection holds the write lock; PostgreSQL: the
//! database refuses connections and its sessions are terminated). The job
//! ends `completed` once, with all of its output stored once, in order.

use crate::stack::{Db, Stack};
use remora_testkit::require;
use remora_testkit::sshd::SshHost;
use sqlx::Connection;
use std::time::{Duration, Instant};

/// How long the database is unavailable.
const OUTAGE: Duration = Duration::from_secs(60);
/// Lines the job prints, one every 0.2 s (about 8 s in all: it ends during the outage).
const LINES: usize = 40;

enum Outage {
    Sqlite(sqlx::SqliteConnection),
    Postgres(String),
}

async fn stack_on(db: Db) -> Stack {
    let wcfg = remora_worker::WorkerConfig {
        flush_interval: Duration::from_millis(200),
        flush_lines: 1,
        ..Default::default()
    };
    let cfg = remora_api::ApiConfig {
        worker_down_after: Duration::from_secs(5),
        rate_limit: 0,
        ..Default::default()
    };
    Stack::start_with(db, wcfg, cfg).await
}

async fn begin(stack: &Stack, pg: Option<&remora_testkit::pg::PgDb>) -> Outage {
    match pg {
        None => {
            let mut c = sqlx::SqliteConnection::connect(&stack.db_url)
                .await
                .unwrap();
            sqlx::query("BEGIN EXCLUSIVE")
                .execute(&mut c)
                .await
                .unwrap();
            Outage::Sqlite(c)
        }
        Some(db) => {
            let name = db.name().to_string();
            db.admin_psql(&format!(
                "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false; \
                 SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{name}'"
            ))
            .unwrap();
            Outage::Postgres(name)
        }
    }
}

async fn end(o: Outage, pg: Option<&remora_testkit::pg::PgDb>) {
    match o {
        Outage::Sqlite(mut c) => {
            sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
        }
        Outage::Postgres(name) => {
            pg.unwrap()
                .admin_psql(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"))
                .unwrap();
        }
    }
}

async fn outage_in_the_middle_of_a_job(db: Db) {
    let host = require!(SshHost::start());
    let stack = stack_on(db).await;
    let pg = stack.pg();
    let sid = stack.add_server("h", &host).await;
    let cmd = format!("for i in $(seq 1 {LINES}); do echo line $i; sleep 0.2; done; echo done");
    let id = stack.submit(&sid, &cmd).await;
    // Some output is stored before the outage begins.
    let start = Instant::now();
    loop {
        let chunks = stack.store.output_chunks(&id, -1).await.unwrap();
        let text: Vec<u8> = chunks.iter().flat_map(|c| c.data.clone()).collect();
        if String::from_utf8_lossy(&text).contains("line 3\n") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no output stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let outage = begin(&stack, pg).await;
    let began = Instant::now();
    // The outage itself is the fault under test: it lasts OUTAGE whatever happens meanwhile.
    tokio::time::sleep(OUTAGE).await;
    if pg.is_none() {
        // SQLite still reads under a held write lock: the job has ended on the host long ago,
        // but its final status could not be stored.
        let j = stack.store.get_job(&id).await.unwrap().unwrap();
        assert_eq!(j.status.as_str(), "running", "the final write never failed");
    }
    end(outage, pg).await;
    eprintln!("database unavailable for {:?}", began.elapsed());

    let j = stack.wait_final(&id, Duration::from_secs(60)).await;
    assert_eq!(
        (j["status"].as_str(), j["exit_code"].as_i64()),
        (Some("completed"), Some(0)),
        "{j}"
    );
    let mut want = String::new();
    for i in 1..=LINES {
        want.push_str(&format!("line {i}\n"));
    }
    want.push_str("done\n");
    let logs = stack.get(&format!("/api/v1/jobs/{id}/logs")).await;
    assert_eq!(logs["stdout"].as_str(), Some(want.as_str()), "{logs}");
    assert_eq!(j["stdout_bytes"].as_i64(), Some(want.len() as i64), "{j}");
    // Stored once: sequence numbers strictly increase and the chunks add up to the output.
    let chunks = stack.store.output_chunks(&id, -1).await.unwrap();
    assert!(
        chunks.windows(2).all(|w| w[0].seq < w[1].seq),
        "{:?}",
        chunks.iter().map(|c| c.seq).collect::<Vec<_>>()
    );
    let total: usize = chunks.iter().map(|c| c.data.len()).sum();
    assert_eq!(total, want.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_60s_sqlite_outage_mid_job_loses_nothing() {
    outage_in_the_middle_of_a_job(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_60s_postgres_outage_mid_job_loses_nothing() {
    let Some(db) = remora_testkit::pg::database().unwrap() else {
        eprintln!("skipped: REMORA_TEST_PG_URL is not set");
        return;
    };
    outage_in_the_middle_of_a_job(Db::Postgres(db)).await;
}
