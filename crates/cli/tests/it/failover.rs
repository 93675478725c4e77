//! Issue 15 item 8, queue failover, with every part a real process: two `remora-netqueue`
//! (preferred and standby, each with its own log), one `remora-api` and two `remora-worker` given
//! both queue addresses, and a batch over 200 OpenSSH host addresses (sshd processes listening on
//! 16 loopback aliases each). The preferred queue is killed with SIGKILL in the middle of the
//! batch: the batch completes, every host ran its job exactly once (each run appends its job id to
//! a file on the host), nothing is left queued or running, and a copy of a finished job pushed to
//! the standby is acknowledged and dropped without running.

use crate::stack::Db;
use remora_testkit::sshd::{SshHost, SshHostOptions};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A binary beside this test binary (target/debug): `cargo build --workspace --bins` builds them.
fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().and_then(|d| d.parent()).unwrap().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins`",
        p.display()
    );
    p
}

/// A process this test started; SIGKILLed (by its PID) on drop.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(mut cmd: Command, log: PathBuf) -> Proc {
        let child = cmd
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {:?}: {e}", cmd.get_program()));
        Proc { child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A durable `remora-netqueue` on a free loopback port with its own log in `dir`.
fn queue(dir: &Path, name: &str, token: &str) -> (Proc, String) {
    let mut cmd = Command::new(bin("remora-netqueue"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("REMORA_QUEUE_TOKEN", token)
        .env("RUST_LOG", "info")
        .args(["--addr", "127.0.0.1:0", "--fsync", "interval:50"])
        .arg("--data-dir")
        .arg(dir.join(name))
        .stdout(Stdio::piped());
    let mut p = Proc::spawn(cmd, dir.join(format!("{name}.log")));
    let mut line = String::new();
    BufReader::new(p.child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("queue {name} did not start: {line:?} {}", p.log_text()))
        .to_string();
    (p, addr)
}

struct Fleet {
    /// Keeps the sshd processes and their users alive.
    hosts: Vec<SshHost>,
    /// (ip, port, index into `hosts`) of every address.
    addrs: Vec<(String, u16, usize)>,
}

/// `n` host addresses: ceil(n / 16) sshd processes, each listening on 16 aliases
/// 127.77.K.1-16 (sshd takes at most 16 `ListenAddress` lines).
fn fleet(n: usize) -> Option<Fleet> {
    let mut hosts = Vec::new();
    let mut addrs = Vec::new();
    for k in 0..n.div_ceil(16) {
        let here = (n - k * 16).min(16);
        let alias_port = free_port(&format!("127.77.{k}.2"));
        let mut opts = SshHostOptions::new()
            .ip(&format!("127.77.{k}.1"))
            .config_line("MaxStartups 400:30:800");
        for j in 2..=here {
            opts = opts.config_line(&format!("ListenAddress 127.77.{k}.{j}:{alias_port}"));
        }
        let h = remora_testkit::skip_or_panic(opts.start())?;
        addrs.push((h.host(), h.port(), hosts.len()));
        for j in 2..=here {
            addrs.push((format!("127.77.{k}.{j}"), alias_port, hosts.len()));
        }
        hosts.push(h);
    }
    Some(Fleet { hosts, addrs })
}

struct Api {
    url: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = self
            .http
            .request(method, format!("{}{}", self.url, path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        match rb.send().await {
            Ok(r) => {
                let st = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                (
                    st,
                    serde_json::from_str(&text).unwrap_or(Value::String(text)),
                )
            }
            Err(e) => (0, Value::String(e.to_string())),
        }
    }

    async fn get(&self, path: &str) -> Value {
        let (st, v) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(st, 200, "GET {path}: {v}");
        v
    }
}

async fn text(url: &str) -> String {
    reqwest::get(url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap_or_default()
}

/// The value of the sample `name` (with labels, exactly as written) in a Prometheus text page.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn failover_mid_batch(n: usize, within: Duration) {
    let Some(fleet) = fleet(n) else { return };
    assert_eq!(fleet.addrs.len(), n);
    let db = Db::from_env();
    let dir = tempfile::tempdir().unwrap();
    let (db_url, _pg) = match db {
        Db::Sqlite => (remora_store::default_url(dir.path()), None),
        Db::Postgres(p) => (p.url.clone(), Some(p)),
    };
    let store = remora_store::Store::connect(&db_url)
        .await
        .expect("database");
    let qtoken = remora_api::auth::generate_token();
    let (mut qa, a_addr) = queue(dir.path(), "queue-a", &qtoken);
    let (qb, b_addr) = queue(dir.path(), "queue-b", &qtoken);
    let list = format!("{a_addr},{b_addr}");
    let common = |cmd: &mut Command| {
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("REMORA_DATA_DIR", dir.path())
            .env("REMORA_DATABASE_URL", &db_url)
            .env("REMORA_QUEUE_ADDR", &list)
            .env("REMORA_QUEUE_TOKEN", &qtoken)
            .env("RUST_LOG", "info,sqlx=warn,russh=warn")
            .stdout(Stdio::null());
    };

    let token = remora_api::auth::generate_token();
    let api_port = free_port("127.0.0.1");
    let mut cmd = Command::new(bin("remora-api"));
    common(&mut cmd);
    cmd.env("REMORA_API_ADDR", format!("127.0.0.1:{api_port}"))
        .env("REMORA_ADMIN_TOKEN", &token)
        .env("REMORA_RATE_LIMIT", "0")
        .env("REMORA_WEB_DIR", dir.path().join("no-web"))
        .env("REMORA_RECONCILE_INTERVAL", "5")
        .env("REMORA_WORKER_DOWN_AFTER", "60");
    let api_proc = Proc::spawn(cmd, dir.path().join("api.log"));
    let api = Api {
        url: format!("http://127.0.0.1:{api_port}"),
        token,
        http: reqwest::Client::new(),
    };
    let start = Instant::now();
    while api
        .call(reqwest::Method::GET, "/api/v1/workers", None)
        .await
        .0
        != 200
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the API never answered: {}",
            api_proc.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    for (i, (ip, port, h)) in fleet.addrs.iter().enumerate() {
        let host = &fleet.hosts[*h];
        let (st, v) = api
            .call(
                reqwest::Method::POST,
                "/api/v1/servers",
                Some(json!({ "name": format!("fo-{i}"), "hostname": ip, "port": port, "user": host.user(), "private_key": host.private_key(), "tags": ["fo"] })),
            )
            .await;
        assert_eq!(st, 201, "{v}");
    }

    let mut workers = Vec::new();
    let mut metrics = Vec::new();
    for w in ["fo-w1", "fo-w2"] {
        let mport = free_port("127.0.0.1");
        let mut cmd = Command::new(bin("remora-worker"));
        common(&mut cmd);
        cmd.env("REMORA_WORKER_ID", w)
            .env("REMORA_WORKER_CONCURRENCY", "16")
            .env("REMORA_HEARTBEAT_INTERVAL", "1")
            .env("REMORA_SSH_CONNECT_TIMEOUT", "20")
            .env("REMORA_WORKER_METRICS_ADDR", format!("127.0.0.1:{mport}"));
        workers.push(Proc::spawn(cmd, dir.path().join(format!("{w}.log"))));
        metrics.push(format!("http://127.0.0.1:{mport}/metrics"));
    }
    let start = Instant::now();
    loop {
        let ws = api.get("/api/v1/workers").await;
        let list = ws
            .as_array()
            .cloned()
            .or_else(|| ws["workers"].as_array().cloned())
            .unwrap_or_default();
        if list.iter().filter(|x| x["status"] == "up").count() == 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "workers never registered: {ws}\n{}",
            workers[0].log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (st, v) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/jobs",
            Some(json!({ "tag": "fo", "command": "sleep 0.2; echo \"$REMORA_JOB\" >> ~/runs; echo x" })),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let batch = v["batch_id"].as_str().unwrap().to_string();
    let submitted = Instant::now();
    let summary = |b: &Value, s: &str| b["summary"][s].as_i64().unwrap_or(0);
    let bpath = format!("/api/v1/batches/{batch}?jobs=false&limit=1");

    // Kill the preferred queue once a quarter of the hosts are done, with others running.
    let at_kill = loop {
        let b = api.get(&bpath).await;
        if summary(&b, "completed") >= (n / 4) as i64 {
            break b;
        }
        assert!(
            submitted.elapsed() < within,
            "a quarter of the batch never completed: {}\n{}",
            b["summary"],
            workers[0].log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    qa.kill9();
    let killed = Instant::now();
    eprintln!(
        "queue A killed at {:?}: {}",
        submitted.elapsed(),
        at_kill["summary"]
    );
    assert!(
        summary(&at_kill, "completed") < n as i64 && at_kill["finished"] != true,
        "the batch was over before the kill: {}",
        at_kill["summary"]
    );

    let mut shown = Instant::now();
    let done = loop {
        let b = api.get(&bpath).await;
        if b["finished"] == true {
            break b;
        }
        if shown.elapsed() >= Duration::from_secs(5) {
            eprintln!("{:?} after the kill: {}", killed.elapsed(), b["summary"]);
            shown = Instant::now();
        }
        assert!(
            submitted.elapsed() < within,
            "batch not finished within {within:?} of its submission: {}\nAPI:\n{}\nworker 1:\n{}",
            b["summary"],
            api_proc.log_text(),
            workers[0].log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "batch of {n} finished {:?} after the kill ({:?} in all)",
        killed.elapsed(),
        submitted.elapsed()
    );
    assert_eq!(done["status"], "completed", "{}", done["summary"]);
    assert_eq!(summary(&done, "completed"), n as i64, "{}", done["summary"]);
    for s in ["queued", "running"] {
        assert_eq!(summary(&done, s), 0, "{s}: {}", done["summary"]);
    }

    // Exactly once, counted on the hosts.
    let mut ran: HashMap<String, usize> = HashMap::new();
    for h in &fleet.hosts {
        let runs = std::fs::read_to_string(h.home().join("runs")).unwrap_or_default();
        for id in runs.lines() {
            *ran.entry(id.to_string()).or_default() += 1;
        }
    }
    let mut jobs = Vec::new();
    for page in 1.. {
        let f = remora_store::JobFilter {
            page,
            limit: 100,
            batch_id: Some(batch.clone()),
            ..Default::default()
        };
        let (got, _) = store.list_jobs(&f).await.unwrap();
        if got.is_empty() {
            break;
        }
        jobs.extend(got);
    }
    assert_eq!(jobs.len(), n);
    let twice: Vec<_> = ran.iter().filter(|(_, &c)| c > 1).collect();
    assert!(twice.is_empty(), "jobs that ran more than once: {twice:?}");
    for j in &jobs {
        assert_eq!(
            ran.get(&j.id),
            Some(&1),
            "job {} ran {:?} times",
            j.id,
            ran.get(&j.id)
        );
        assert_eq!(j.status.as_str(), "completed");
    }
    assert_eq!(ran.len(), n, "runs of jobs outside the batch");

    // Both workers and the API say where they are and that they moved once.
    let a_active = format!("remora_worker_queue_active{{addr=\"{a_addr}\"}}");
    let b_active = format!("remora_worker_queue_active{{addr=\"{b_addr}\"}}");
    for m in &metrics {
        let page = text(m).await;
        assert_eq!(
            sample(&page, "remora_worker_queue_failovers_total"),
            Some(1.0),
            "{page}"
        );
        assert_eq!(sample(&page, &b_active), Some(1.0), "{page}");
        assert_eq!(sample(&page, &a_active), Some(0.0), "{page}");
    }
    let page = text(&format!("{}/metrics", api.url)).await;
    assert_eq!(
        sample(&page, "remora_queue_failovers_total"),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, &format!("remora_queue_active{{addr=\"{b_addr}\"}}")),
        Some(1.0),
        "{page}"
    );
    for (who, log) in [
        ("worker 1", workers[0].log_text()),
        ("worker 2", workers[1].log_text()),
        ("api", api_proc.log_text()),
    ] {
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| {
                l.contains("failed over")
                    || l.contains("re-established")
                    || l.contains("connection lost")
            })
            .collect();
        eprintln!("{who}:\n  {}", lines.join("\n  "));
        assert!(log.contains("failed over to another queue"), "{who}: {log}");
    }

    // A copy of a finished job on the standby (as a late reconciler pass would push it) is
    // acknowledged and dropped by a worker without running.
    let dropped_before: f64 = {
        let mut s = 0.0;
        for m in &metrics {
            s += sample(&text(m).await, "remora_worker_deliveries_not_queued_total").unwrap_or(0.0);
        }
        s
    };
    let q = remora_netqueue::Client::connect(&b_addr, Some(qtoken.clone()))
        .await
        .unwrap();
    let payload = serde_json::to_vec(&remora_domain::QueuedJob {
        job_id: jobs[0].id.clone(),
        server_id: jobs[0].server_id.clone(),
    })
    .unwrap();
    q.push(remora_netqueue::Push::new(
        remora_domain::JOBS_QUEUE,
        jobs[0].id.clone(),
        payload,
    ))
    .await
    .unwrap();
    let start = Instant::now();
    loop {
        let mut s = 0.0;
        for m in &metrics {
            s += sample(&text(m).await, "remora_worker_deliveries_not_queued_total").unwrap_or(0.0);
        }
        let st = q.stats().await.unwrap();
        let left = st
            .queues
            .get(remora_domain::JOBS_QUEUE)
            .map_or(0, |x| x.ready + x.leased + x.delayed);
        if s > dropped_before && left == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the copy of a finished job was not dropped (dropped {s}, left {left})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let runs: usize = fleet
        .hosts
        .iter()
        .map(|h| {
            std::fs::read_to_string(h.home().join("runs"))
                .unwrap_or_default()
                .lines()
                .filter(|l| *l == jobs[0].id)
                .count()
        })
        .sum();
    assert_eq!(runs, 1, "the dropped copy ran");
    let j = store.get_job(&jobs[0].id).await.unwrap().unwrap();
    assert_eq!(j.status.as_str(), "completed");
    drop(workers);
    drop(api_proc);
    drop(qb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_active_queue_mid_batch_of_200_hosts_runs_every_job_once() {
    failover_mid_batch(200, Duration::from_secs(240)).await;
}

/// The 1,000-host form (docs/benchmarks.md): `cargo nextest run -p remora-cli --run-ignored
/// only -E 'test(queue_mid_batch_of_1000)'`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "1,000 hosts: minutes of CPU; run by hand"]
async fn killing_the_active_queue_mid_batch_of_1000_hosts_runs_every_job_once() {
    failover_mid_batch(1000, Duration::from_secs(900)).await;
}
