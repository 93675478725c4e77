//! Several workers, one connection per host (issue 15 item 7): a real `remora-netqueue` process,
//! three `remora-worker` processes and the API (in this process) on one SQLite database; N servers
//! on one real sshd. Two rounds of one command on every server: the second opens (almost) no new
//! SSH connection and the connections held stay about N, not up to 3N, because the queue hands a
//! server's job to the worker that already holds a connection to it.
//!
//! `REMORA_TEST_BIN_DIR` runs other builds of the two binaries (e.g. /work/main/target/debug, to
//! see the bounds fail without affinity); `REMORA_TEST_AFFINITY_HOSTS` sets N (default 100).

use remora_store::{Store, Vault};
use remora_testkit::require;
use remora_testkit::sshd::SshHostOptions;
use serde_json::{json, Value};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Where `remora-netqueue` and `remora-worker` are: beside this test binary unless
/// `REMORA_TEST_BIN_DIR` says otherwise.
fn bin(name: &str) -> PathBuf {
    let dir = match std::env::var_os("REMORA_TEST_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let exe = std::env::current_exe().unwrap();
            exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf()
        }
    };
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --tests --bins`",
        p.display()
    );
    p
}

/// A child process killed (by its PID) on drop.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A free loopback port (bound, then released for the child to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn wait_batch(http: &reqwest::Client, api: &str, token: &str, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let b: Value = http
            .get(format!("{api}/api/v1/batches/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if b["finished"] == true {
            return b;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "batch {id} not finished within 120 s: {}",
            b["summary"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_workers_hold_one_connection_per_host_and_a_second_round_opens_almost_none() {
    let n: usize = std::env::var("REMORA_TEST_AFFINITY_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    // Every worker connects at once in the first round: let sshd take them all.
    let host = require!(SshHostOptions::new()
        .config_line(&format!("MaxStartups {}:30:{}", 4 * n, 8 * n))
        .start());
    let dir = tempfile::tempdir().unwrap();

    // The queue: a real remora-netqueue process. The hold is 2 s rather than the default 300 ms:
    // on a loaded 2-core testbed (load average 20 seen) a worker's next reserve can take longer
    // than 300 ms to be scheduled, and the bounds below are about connections, not the hold.
    let qtoken = remora_api::auth::generate_token();
    let qlog = dir.path().join("netqueue.log");
    let mut child = Command::new(bin("remora-netqueue"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("REMORA_QUEUE_AFFINITY_WAIT_MS", "2000")
        .args([
            "--addr",
            "127.0.0.1:0",
            "--in-memory",
            "--max-attempts",
            "1000",
        ])
        .args(["--token", &qtoken])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&qlog).unwrap())
        .spawn()
        .expect("starting remora-netqueue");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _queue_proc = Proc { child, log: qlog };
    let queue_addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("netqueue said {line:?}"))
        .to_string();
    let queue = remora_netqueue::Client::connect(&queue_addr, Some(qtoken.clone()))
        .await
        .unwrap();

    // The API, in this process, on SQLite in `dir`.
    let db_url = remora_store::default_url(dir.path());
    let store = Store::connect(&db_url).await.unwrap();
    let vault = Vault::load(None, dir.path()).unwrap();
    let token = remora_api::auth::generate_token();
    store
        .insert_token("test", &remora_api::auth::hash_token(&token), "admin")
        .await
        .unwrap();
    let al = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", al.local_addr().unwrap());
    // Three workers and the API on one SQLite file: under load a heartbeat can wait seconds for
    // the writer, and a reaper at 5 s then ends running jobs as worker_lost. Not what this
    // test is about.
    let cfg = remora_api::ApiConfig {
        worker_down_after: Duration::from_secs(120),
        ..Default::default()
    };
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let state = remora_api::AppState::new(store.clone(), vault, queue.clone(), cfg);
    tokio::spawn(remora_api::run(al, state, shutdown.clone()));
    let http = reqwest::Client::new();

    // Three worker processes, each with room for every host.
    let mut workers = Vec::new();
    for i in 0..3 {
        let id = format!("aff-w{i}");
        let log = dir.path().join(format!("{id}.log"));
        let port = free_port();
        let child = Command::new(bin("remora-worker"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("REMORA_DATA_DIR", dir.path())
            .env("REMORA_DATABASE_URL", &db_url)
            .env("REMORA_QUEUE_ADDR", &queue_addr)
            .env("REMORA_QUEUE_TOKEN", &qtoken)
            .env("REMORA_WORKER_ID", &id)
            .env("REMORA_WORKER_CONCURRENCY", n.to_string())
            .env("REMORA_WORKER_METRICS_ADDR", format!("127.0.0.1:{port}"))
            .env("REMORA_HEARTBEAT_INTERVAL", "1")
            .env("RUST_LOG", "info,sqlx=warn,russh=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting remora-worker");
        workers.push((Proc { child, log }, port, id));
    }
    let start = Instant::now();
    loop {
        let ws: Value = http
            .get(format!("{api}/api/v1/workers"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let list = ws
            .as_array()
            .cloned()
            .or_else(|| ws["workers"].as_array().cloned())
            .unwrap_or_default();
        if workers
            .iter()
            .all(|(_, _, id)| list.iter().any(|x| x["id"] == id.as_str()))
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "workers never registered: {}",
            workers[0].0.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // N servers on the one sshd, tagged `fleet`.
    for i in 0..n {
        let (st, v) = {
            let r = http
                .post(format!("{api}/api/v1/servers"))
                .bearer_auth(&token)
                .json(&json!({ "name": format!("h{i}"), "hostname": host.host(), "port": host.port(), "user": host.user(), "private_key": host.private_key(), "tags": ["fleet"] }))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        };
        assert_eq!(st, 201, "{v}");
    }

    let before = host.connection_count();
    let mut opened = Vec::new();
    for round in 1..=2 {
        let t = Instant::now();
        let r = http
            .post(format!("{api}/api/v1/jobs"))
            .bearer_auth(&token)
            .json(&json!({ "tag": "fleet", "command": "echo hi" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let v: Value = r.json().await.unwrap();
        let batch = v["batch_id"]
            .as_str()
            .or_else(|| v["batch"]["id"].as_str())
            .or_else(|| v["id"].as_str())
            .unwrap_or_else(|| panic!("no batch id in {v}"))
            .to_string();
        let b = wait_batch(&http, &api, &token, &batch).await;
        if b["summary"]["completed"].as_u64() != Some(n as u64) {
            let logs: Vec<String> = workers
                .iter()
                .map(|(p, _, id)| {
                    let t = p.log_text();
                    let tail: String = t.lines().rev().take(15).collect::<Vec<_>>().join("\n");
                    format!("--- {id}:\n{tail}")
                })
                .collect();
            let jobs: Value = http
                .get(format!(
                    "{api}/api/v1/jobs?batch_id={batch}&status=failed&limit=3"
                ))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            panic!(
                "round {round}: {}\nfailed jobs: {jobs}\n{}",
                b["summary"],
                logs.join("\n")
            );
        }
        let total = host.connection_count() - before;
        opened.push(total - opened.iter().sum::<usize>());
        eprintln!(
            "round {round}: {n} hosts in {:?}, {} new connections",
            t.elapsed(),
            opened[round - 1]
        );
    }

    // Connections held now: sshd's per-connection processes, and the workers' own gauges.
    let held = host.connection_processes();
    let mut gauges = Vec::new();
    let mut new_leases = 0.0;
    for (_, port, _) in &workers {
        let text = http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        gauges.push(metric(&text, "remora_worker_ssh_connections") as usize);
        new_leases += metric(&text, "remora_worker_ssh_leases_total{connection=\"new\"}");
    }
    let stats = queue.stats().await.unwrap().affinity;
    eprintln!(
        "opened per round {opened:?}; held {held} (sshd) / {gauges:?} (workers' gauges); \
         new leases {new_leases}; queue affinity {stats:?}"
    );
    let slack = n / 10;
    assert!(
        opened[0] <= n + slack,
        "the first round opened {} connections for {n} hosts",
        opened[0]
    );
    assert!(
        opened[1] <= slack,
        "the second round opened {} new connections for {n} hosts already connected (at most {slack})",
        opened[1]
    );
    assert!(
        held <= n + slack,
        "{held} connections held for {n} hosts (at most {})",
        n + slack
    );
    assert!(
        gauges.iter().sum::<usize>() <= n + slack,
        "the workers hold {gauges:?} connections for {n} hosts"
    );
    assert!(
        stats.hits_total as usize >= n - slack,
        "the queue counted {} affinity hits in the second round: {stats:?}",
        stats.hits_total
    );
}
