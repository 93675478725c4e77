//! The worker's "done when" list of issue 3 against real OpenSSH: repeated
//! cancels, a worker process killed with SIGKILL, dead and silent hosts,
//! 1 GiB of output, connection reuse, key formats, retries, drain, metrics.
//! Tests that need a separate worker process run the `remora-worker` binary
//! against the stack's database and queue.

use crate::stack::{Db, Stack};
use remora_testkit::require;
use remora_testkit::sshd::{KeyKind, SshHost};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- helpers

/// The `remora-worker` binary beside this test binary (target/debug). Cargo
/// builds it for the worker crate's own integration tests, so `cargo test`,
/// `cargo nextest run --workspace` and `make test` all keep it fresh.
fn worker_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("remora-worker");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --tests --bins`",
        p.display()
    );
    p
}

/// A `remora-worker` process on the stack's database and queue. Killed on drop.
struct WorkerProc {
    child: Child,
    id: String,
    log: PathBuf,
}

impl WorkerProc {
    async fn spawn(stack: &Stack, id: &str, env: &[(&str, &str)]) -> WorkerProc {
        let log = stack.dir.path().join(format!("{id}.log"));
        let mut cmd = Command::new(worker_bin());
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("REMORA_DATA_DIR", stack.dir.path())
            .env("REMORA_DATABASE_URL", &stack.db_url)
            .env("REMORA_QUEUE_ADDR", &stack.queue_addr)
            .env("REMORA_QUEUE_TOKEN", &stack.queue_token)
            .env("REMORA_WORKER_ID", id)
            .env("REMORA_HEARTBEAT_INTERVAL", "1")
            .env("REMORA_KILL_GRACE", "2")
            .env("REMORA_SSH_CONNECT_TIMEOUT", "5")
            .env("RUST_LOG", "info,sqlx=warn,russh=warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting remora-worker");
        let w = WorkerProc {
            child,
            id: id.to_string(),
            log,
        };
        let start = Instant::now();
        loop {
            let ws = stack.get("/api/v1/workers").await;
            let list = ws
                .as_array()
                .cloned()
                .or_else(|| ws["workers"].as_array().cloned())
                .unwrap_or_default();
            if list.iter().any(|x| x["id"] == id) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "worker {id} never registered: {}",
                w.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        w
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The worker's log, without terminal colour codes.
    fn log_text(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Peak resident set size of the process so far, KiB (`VmHWM`).
    fn peak_rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                start.elapsed() < within,
                "worker {} still running after {within:?}: {}",
                self.id,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stack on SQLite with no API rate limit (these tests poll many jobs);
/// `wcfg: None` runs no worker in this process (the test starts one).
async fn stack(wcfg: Option<remora_worker::WorkerConfig>) -> Stack {
    let cfg = remora_api::ApiConfig {
        worker_down_after: Duration::from_secs(5),
        rate_limit: 0,
        ..Default::default()
    };
    Stack::start_opts(Db::Sqlite, wcfg, cfg).await
}

async fn stack_without_worker() -> Stack {
    stack(None).await
}

/// Kill the sshd session processes of the host's user (by pid): the
/// connections they serve drop, as when a host reboots.
pub(crate) fn kill_sshd_sessions(host: &SshHost) {
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u32>().ok());
        let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if uid == Some(host.uid()) && cmd.starts_with("sshd:") {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// Wait until `n` processes of the host's user run `sleep 1000`.
async fn wait_sleepers(host: &SshHost, n: usize) {
    let start = Instant::now();
    loop {
        let ps = host.user_processes();
        if ps.iter().filter(|(_, c)| c.trim() == "sleep 1000").count() >= n {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the command never started: {ps:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn submit_json(stack: &Stack, body: Value) -> String {
    let (st, v) = stack.post("/api/v1/jobs", body).await;
    assert_eq!(st, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

// ------------------------------------------------------------ cancel 20×

/// Cancel `command` 20 times in a row on one stack: every time the job ends
/// `canceled` and nothing of the user is left on the host within 3 s.
async fn cancel_twenty_times(command: &str, sleepers: usize) {
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    let sid = stack.add_server("h", &host).await;
    for round in 1..=20 {
        let id = stack.submit(&sid, command).await;
        stack
            .wait_job(&id, Duration::from_secs(20), |j| j["status"] == "running")
            .await;
        wait_sleepers(&host, sleepers).await;
        let (st, v) = stack
            .post(&format!("/api/v1/jobs/{id}/cancel"), json!(null))
            .await;
        assert_eq!(st, 202, "{v}");
        let asked = Instant::now();
        let job = stack.wait_final(&id, Duration::from_secs(10)).await;
        assert_eq!(job["status"], "canceled", "round {round}: {job}");
        let left = Duration::from_secs(3).saturating_sub(asked.elapsed());
        assert!(
            host.wait_no_user_processes(left),
            "round {round}: left on the host 3 s after the cancel: {:?}",
            host.user_processes()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_plain_command_20_of_20() {
    cancel_twenty_times("sleep 1000", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_background_children_20_of_20() {
    cancel_twenty_times("bash -c 'sleep 1000 & sleep 1000 & wait'", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_setsid_children_20_of_20() {
    cancel_twenty_times("setsid sleep 1000 & sleep 1000; wait", 2).await;
}

/// Eight jobs on one connection canceled at once: the cancel sweeps share
/// the connection's two side channels (8 + 2 = sshd's default MaxSessions)
/// and every job still ends `canceled` with nothing left within 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_of_eight_jobs_at_once_on_one_connection() {
    let host = require!(SshHost::start());
    let stack = stack(Some(Default::default())).await;
    let sid = stack.add_server("h", &host).await;
    let (st, v) = stack
        .post(
            &format!("/api/v1/servers/{sid}/host-key/accept"),
            json!({ "fingerprint": host.host_key_fingerprint() }),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let before = host.connection_count();
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(stack.submit(&sid, "sleep 1000").await);
    }
    let t0 = Instant::now();
    wait_sleepers(&host, 8).await;
    eprintln!("8 jobs running after {:?}", t0.elapsed());
    let asked = Instant::now();
    for id in &ids {
        let (st, v) = stack
            .post(&format!("/api/v1/jobs/{id}/cancel"), json!(null))
            .await;
        assert_eq!(st, 202, "{v}");
    }
    for id in &ids {
        let j = stack.wait_final(id, Duration::from_secs(10)).await;
        assert_eq!(j["status"], "canceled", "{j}");
    }
    eprintln!("8 jobs canceled after {:?}", asked.elapsed());
    let left = Duration::from_secs(3).saturating_sub(asked.elapsed());
    assert!(
        host.wait_no_user_processes(left),
        "left on the host 3 s after the cancels: {:?}",
        host.user_processes()
    );
    assert_eq!(
        host.connection_count() - before,
        1,
        "all eight jobs shared one connection"
    );
}

// ------------------------------------------------------ worker kill -9

/// SIGKILL of the worker process mid-job: the wrapper's watchdog kills the
/// remote tree once the SSH session is gone, and the API's reaper ends the
/// job with a reason naming the lost worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_killed_with_sigkill_leaves_nothing_and_the_job_ends() {
    let host = require!(SshHost::start());
    let stack = stack_without_worker().await;
    let sid = stack.add_server("h", &host).await;
    let mut w = WorkerProc::spawn(&stack, "w-kill9", &[]).await;
    let id = stack.submit(&sid, "sleep 1000").await;
    stack
        .wait_job(&id, Duration::from_secs(20), |j| j["status"] == "running")
        .await;
    wait_sleepers(&host, 1).await;
    w.signal("-KILL");
    w.wait_exit(Duration::from_secs(5)).await;
    let killed = Instant::now();
    let job = stack.wait_final(&id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error_code"], "worker_lost", "{job}");
    assert!(
        job["error"].as_str().unwrap_or("").contains("w-kill9"),
        "the reason names the worker: {job}"
    );
    assert!(
        host.wait_no_user_processes(Duration::from_secs(10)),
        "left on the host: {:?}",
        host.user_processes()
    );
    eprintln!("job final {:?} after the kill", killed.elapsed());
}

// ------------------------------------------- dead and silent hosts

/// One host refuses connections, one accepts TCP and never speaks SSH: both
/// jobs fail with a clear reason within the connect timeout (5 s in the
/// stack), and jobs on a healthy host run meanwhile as if nothing happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_and_silent_hosts_fail_fast_and_do_not_block_others() {
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    let healthy = stack.add_server("healthy", &host).await;

    let refused_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s); // accept, then say nothing
        }
    });
    for (name, port) in [("refused", refused_port), ("silent", silent_port)] {
        let (st, v) = stack
            .post("/api/v1/servers", json!({ "name": name, "hostname": "127.0.0.1", "port": port, "user": host.user(), "private_key": host.private_key() }))
            .await;
        assert_eq!(st, 201, "{v}");
    }
    // Warm the healthy host's connection so the timing below measures jobs, not the first handshake.
    let warm = stack.submit(&healthy, "true").await;
    assert_eq!(
        stack.wait_final(&warm, Duration::from_secs(20)).await["status"],
        "completed"
    );

    let t0 = Instant::now();
    let refused = submit_json(
        &stack,
        json!({ "server_id": "refused", "command": "echo never", "max_retries": 0 }),
    )
    .await;
    let silent = submit_json(
        &stack,
        json!({ "server_id": "silent", "command": "echo never", "max_retries": 0 }),
    )
    .await;
    let mut ok = Vec::new();
    for i in 0..10 {
        ok.push(stack.submit(&healthy, &format!("echo job{i}")).await);
    }
    for (i, id) in ok.iter().enumerate() {
        let j = stack.wait_final(id, Duration::from_secs(20)).await;
        assert_eq!(j["status"], "completed", "{j}");
        let out = stack.get(&format!("/api/v1/jobs/{id}/logs")).await;
        assert_eq!(out["stdout"], format!("job{i}\n"));
    }
    let healthy_done = t0.elapsed();
    assert!(
        healthy_done < Duration::from_secs(4),
        "healthy jobs took {healthy_done:?}: a dead host held them up"
    );

    let j = stack.wait_final(&refused, Duration::from_secs(20)).await;
    assert_eq!(
        (j["status"].as_str(), j["error_code"].as_str()),
        (Some("failed"), Some("connect_failed")),
        "{j}"
    );
    assert!(j["error"].as_str().unwrap().contains("refused"), "{j}");
    let j = stack.wait_final(&silent, Duration::from_secs(20)).await;
    let silent_done = t0.elapsed();
    assert_eq!(
        (j["status"].as_str(), j["error_code"].as_str()),
        (Some("failed"), Some("connect_timeout")),
        "{j}"
    );
    assert!(
        j["error"].as_str().unwrap().contains("no SSH handshake"),
        "{j}"
    );
    // connect timeout 5 s, plus scheduling slack on a busy machine
    assert!(
        silent_done < Duration::from_millis(7500),
        "silent host failed after {silent_done:?}"
    );
    hold.abort();
}

// ------------------------------------------------------------ 1 GiB

/// 1 GiB on stdout: the worker process's peak RSS stays under 64 MiB, the
/// stored output is exactly the default 16 MiB cap with `truncated`, and
/// the job completes with exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_gib_of_stdout_keeps_worker_memory_bounded() {
    let host = require!(SshHost::start());
    let stack = stack_without_worker().await;
    let sid = stack.add_server("h", &host).await;
    let w = WorkerProc::spawn(&stack, "w-gib", &[]).await;
    let (st, v) = stack
        .post("/api/v1/jobs", json!({ "server_id": sid, "command": "yes 'Remora streams a gigabyte of output in bounded memory.' | head -c 1073741824" }))
        .await;
    assert_eq!(st, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let t0 = Instant::now();
    let job = stack.wait_final(&id, Duration::from_secs(240)).await;
    let took = t0.elapsed();
    let peak = w.peak_rss_kib();
    eprintln!("1 GiB job took {took:?}; worker peak RSS {} KiB", peak);
    assert_eq!(
        (job["status"].as_str(), job["exit_code"].as_i64()),
        (Some("completed"), Some(0)),
        "{job}"
    );
    assert_eq!(job["truncated"], true, "{job}");
    let cap = 16 * 1024 * 1024;
    assert_eq!(job["stdout_bytes"].as_i64(), Some(cap), "{job}");
    let body = stack
        .http
        .get(format!("{}/api/v1/jobs/{id}/stdout", stack.url))
        .bearer_auth(&stack.token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len() as i64, cap);
    let line = b"Remora streams a gigabyte of output in bounded memory.\n";
    assert!(
        body.chunks(line.len())
            .take((cap as usize) / line.len())
            .all(|c| c == line),
        "stored output is bytes-exact"
    );
    assert!(peak < 64 * 1024, "worker peak RSS {peak} KiB ≥ 64 MiB");
}

// ------------------------------------------------ connection reuse

/// 200 `true` jobs to one host go over a handful of SSH connections (the
/// sshd log counts every TCP connection it accepted): at concurrency 16 and
/// 8 channels per connection, at most 2, shared by the jobs claimed before
/// the host key was pinned (trust on first use) and after (the bound of 4
/// predates that reuse).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_jobs_share_a_handful_of_connections() {
    let host = require!(SshHost::start());
    let stack = stack(Some(Default::default())).await;
    let (st, v) = stack
        .post("/api/v1/servers", json!({ "name": "h", "hostname": host.host(), "port": host.port(), "user": host.user(), "private_key": host.private_key(), "max_concurrency": 16 }))
        .await;
    assert_eq!(st, 201, "{v}");
    let before = host.connection_count();
    let t0 = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..200 {
        ids.push(stack.submit("h", "true").await);
    }
    for id in &ids {
        let j = stack.wait_final(id, Duration::from_secs(120)).await;
        assert_eq!(j["status"], "completed", "{j}");
    }
    let conns = host.connection_count() - before;
    let log = host.log();
    let refused = log.matches("no more sessions").count();
    eprintln!(
        "200 jobs in {:?} over {conns} SSH connections, {refused} sessions refused",
        t0.elapsed()
    );
    assert!(
        (1..=4).contains(&conns),
        "200 jobs opened {conns} SSH connections: {log}"
    );
    // The test host runs sshd's default MaxSessions (10 = 8 job channels +
    // 2 side channels): a slot is reused only after sshd freed its session.
    assert_eq!(refused, 0, "sshd refused sessions: {log}");
}

// ------------------------------------------------------------- keys

/// Ed25519, ECDSA and RSA keys in OpenSSH and PEM formats, with a passphrase
/// (and PEM without one), each authenticate and run a job.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_key_type_and_format_with_a_passphrase_runs_jobs() {
    let mut host = require!(SshHost::start());
    let stack = Stack::new().await;
    let pass = "correct horse";
    let cases: [(&str, KeyKind, bool, Option<&str>); 6] = [
        ("ed25519-openssh-pass", KeyKind::Ed25519, false, Some(pass)),
        ("ecdsa-openssh-pass", KeyKind::Ecdsa, false, Some(pass)),
        ("ecdsa-pem-pass", KeyKind::Ecdsa, true, Some(pass)),
        ("rsa-openssh-pass", KeyKind::Rsa, false, Some(pass)),
        ("rsa-pem-pass", KeyKind::Rsa, true, Some(pass)),
        ("rsa-pem-plain", KeyKind::Rsa, true, None),
    ];
    let mut jobs = Vec::new();
    for (name, kind, pem, pp) in cases {
        let key = host.add_key(kind, pp, pem).unwrap();
        let mut body = json!({ "name": name, "hostname": host.host(), "port": host.port(), "user": host.user(), "private_key": key });
        if let Some(p) = pp {
            body["passphrase"] = json!(p);
        }
        let (st, v) = stack.post("/api/v1/servers", body).await;
        assert_eq!(st, 201, "{name}: {v}");
        jobs.push((name, stack.submit(name, &format!("echo {name}")).await));
    }
    for (name, id) in jobs {
        let j = stack.wait_final(&id, Duration::from_secs(30)).await;
        assert_eq!(j["status"], "completed", "{name}: {j}");
        assert_eq!(
            stack.get(&format!("/api/v1/jobs/{id}/logs")).await["stdout"],
            format!("{name}\n")
        );
    }
}

// ---------------------------------------------------------- retries

/// Connection-level failures are retried with backoff up to `max_retries`:
/// a host that stays down fails after 1 + 2 attempts with the last error; a
/// host that comes back during the backoff runs the job on attempt 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connection_failures_are_retried_with_backoff() {
    let mut host = require!(SshHost::start());
    let wcfg = remora_worker::WorkerConfig {
        retry_backoff: Duration::from_millis(300),
        ..Default::default()
    };
    let stack = stack(Some(wcfg)).await;
    let sid = stack.add_server("flaky", &host).await;
    let down_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (st, v) = stack
        .post("/api/v1/servers", json!({ "name": "down", "hostname": "127.0.0.1", "port": down_port, "user": host.user(), "private_key": host.private_key() }))
        .await;
    assert_eq!(st, 201, "{v}");
    // Pin the host key first, so the restarted sshd is the same host.
    let warm = stack.submit(&sid, "true").await;
    assert_eq!(
        stack.wait_final(&warm, Duration::from_secs(20)).await["status"],
        "completed"
    );

    let t0 = Instant::now();
    let down = submit_json(
        &stack,
        json!({ "server_id": "down", "command": "echo never", "max_retries": 2 }),
    )
    .await;
    let j = stack.wait_final(&down, Duration::from_secs(30)).await;
    let took = t0.elapsed();
    assert_eq!(
        (
            j["status"].as_str(),
            j["error_code"].as_str(),
            j["attempt"].as_i64()
        ),
        (Some("failed"), Some("connect_failed"), Some(3)),
        "{j}"
    );
    assert!(j["error"].as_str().unwrap().contains("refused"), "{j}");
    // 300 ms + 600 ms of backoff between the three attempts
    assert!(
        took >= Duration::from_millis(900),
        "three attempts in {took:?}: no backoff"
    );

    // A host that is down for the first attempt only. Its pooled connection
    // goes too (sshd's session processes killed), so the job has to connect.
    host.stop().unwrap();
    kill_sshd_sessions(&host);
    let stack2 = stack;
    let id = submit_json(
        &stack2,
        json!({ "server_id": sid, "command": "echo back", "max_retries": 2 }),
    )
    .await;
    let j = stack2
        .wait_job(&id, Duration::from_secs(20), |j| {
            j["error"]
                .as_str()
                .unwrap_or("")
                .starts_with("attempt 1 failed")
        })
        .await;
    assert_eq!(j["status"], "queued", "{j}");
    host.restart().unwrap();
    let j = stack2.wait_final(&id, Duration::from_secs(20)).await;
    assert_eq!(
        (j["status"].as_str(), j["attempt"].as_i64()),
        (Some("completed"), Some(2)),
        "{j}"
    );
    assert_eq!(
        stack2.get(&format!("/api/v1/jobs/{id}/logs")).await["stdout"],
        "back\n"
    );
}

// ------------------------------------------------------------ drain

/// SIGTERM: the worker stops reserving at once (a job submitted afterwards
/// stays queued), reports `draining`, lets the running job finish, exits 0;
/// the next worker picks the queued job up at once (no lease to wait out).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_running_jobs_and_takes_no_new_ones() {
    let host = require!(SshHost::start());
    let stack = stack_without_worker().await;
    let sid = stack.add_server("h", &host).await;
    let mut w = WorkerProc::spawn(&stack, "w-drain", &[("REMORA_DRAIN_TIMEOUT", "30")]).await;
    let running = stack.submit(&sid, "sleep 3; echo finished").await;
    stack
        .wait_job(&running, Duration::from_secs(20), |j| {
            j["status"] == "running"
        })
        .await;
    w.signal("-TERM");
    let later = stack.submit(&sid, "echo later").await;
    let t0 = Instant::now();
    loop {
        let ws = stack.get("/api/v1/workers").await;
        let list = ws
            .as_array()
            .cloned()
            .or_else(|| ws["workers"].as_array().cloned())
            .unwrap_or_default();
        if list
            .iter()
            .any(|x| x["id"] == "w-drain" && x["status"] == "draining")
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "worker never reported draining: {ws}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let st = w.wait_exit(Duration::from_secs(20)).await;
    assert!(st.success(), "worker exit {st:?}: {}", w.log_text());
    let j = stack.get(&format!("/api/v1/jobs/{running}")).await;
    assert_eq!(
        (j["status"].as_str(), j["exit_code"].as_i64()),
        (Some("completed"), Some(0)),
        "{j}"
    );
    assert_eq!(
        stack.get(&format!("/api/v1/jobs/{running}/logs")).await["stdout"],
        "finished\n"
    );
    let j = stack.get(&format!("/api/v1/jobs/{later}")).await;
    assert_eq!(
        (j["status"].as_str(), j["attempt"].as_i64()),
        (Some("queued"), Some(0)),
        "the draining worker took a new job: {j}"
    );

    let _w2 = WorkerProc::spawn(&stack, "w-next", &[]).await;
    let t1 = Instant::now();
    let j = stack.wait_final(&later, Duration::from_secs(20)).await;
    assert_eq!(j["status"], "completed", "{j}");
    assert!(
        t1.elapsed() < Duration::from_secs(10),
        "the queued job waited {:?} (a lease of the stopped worker?)",
        t1.elapsed()
    );
}

/// When the drain timeout runs out, the remaining jobs are canceled the
/// proper way (TERM, KILL, marker sweep), with a reason; nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drain_timeout_cancels_the_rest_properly() {
    let host = require!(SshHost::start());
    let stack = stack_without_worker().await;
    let sid = stack.add_server("h", &host).await;
    let mut w = WorkerProc::spawn(&stack, "w-expire", &[("REMORA_DRAIN_TIMEOUT", "1")]).await;
    let id = stack
        .submit(&sid, "setsid sleep 1000 & sleep 1000; wait")
        .await;
    stack
        .wait_job(&id, Duration::from_secs(20), |j| j["status"] == "running")
        .await;
    wait_sleepers(&host, 2).await;
    w.signal("-TERM");
    let t0 = Instant::now();
    let st = w.wait_exit(Duration::from_secs(15)).await;
    assert!(st.success(), "worker exit {st:?}: {}", w.log_text());
    let j = stack.get(&format!("/api/v1/jobs/{id}")).await;
    assert_eq!(
        (j["status"].as_str(), j["error_code"].as_str()),
        (Some("canceled"), Some("drain_timeout")),
        "{j}"
    );
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("drain timeout of 1 s"),
        "{j}"
    );
    assert!(
        host.wait_no_user_processes(Duration::from_secs(3)),
        "left on the host: {:?}",
        host.user_processes()
    );
    eprintln!("worker stopped {:?} after SIGTERM", t0.elapsed());
}

// ---------------------------------------------------------- metrics

async fn scrape(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|r| r.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// `REMORA_WORKER_METRICS_ADDR` serves jobs by final status, SSH connect
/// latency, open connections and channels, and bytes streamed; a drain
/// request on the queue's pub/sub (what the API publishes) stops the worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_endpoint_and_drain_request() {
    let host = require!(SshHost::start());
    let stack = stack_without_worker().await;
    let sid = stack.add_server("h", &host).await;
    let mut w = WorkerProc::spawn(
        &stack,
        "w-metrics",
        &[("REMORA_WORKER_METRICS_ADDR", "127.0.0.1:0")],
    )
    .await;
    let log = w.log_text();
    let addr = log
        .lines()
        .find(|l| l.contains("metrics endpoint listening"))
        .and_then(|l| l.split("addr=").nth(1))
        .map(|a| a.split_whitespace().next().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("no metrics address in the log: {log}"));
    let url = format!("http://{addr}/metrics");
    // Pin the host key up front (with the fingerprint we know), so both
    // jobs expect the same key and share one connection.
    let (st, v) = stack
        .post(
            &format!("/api/v1/servers/{sid}/host-key/accept"),
            json!({ "fingerprint": host.host_key_fingerprint() }),
        )
        .await;
    assert_eq!(st, 200, "{v}");

    let a = stack.submit(&sid, "printf abc; printf de >&2").await;
    assert_eq!(
        stack.wait_final(&a, Duration::from_secs(20)).await["status"],
        "completed"
    );
    let b = stack.submit(&sid, "exit 3").await;
    assert_eq!(
        stack.wait_final(&b, Duration::from_secs(20)).await["status"],
        "failed"
    );
    // The worker counts a job after its final status is committed, so the API may report the end
    // a moment before the counters move: wait for them (deadline), then check every value.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = scrape(&url).await;
        let done = |s: &str| {
            metric(
                &text,
                &format!("remora_worker_jobs_finished_total{{status=\"{s}\"}}"),
            ) == Some(1.0)
        };
        let idle = metric(&text, "remora_worker_jobs_running") == Some(0.0)
            && metric(&text, "remora_worker_ssh_channels") == Some(0.0);
        if (done("completed") && done("failed") && idle) || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let m = |n: &str| metric(&text, n).unwrap_or_else(|| panic!("{n} missing: {text}"));
    assert_eq!(
        m("remora_worker_jobs_finished_total{status=\"completed\"}"),
        1.0
    );
    assert_eq!(
        m("remora_worker_jobs_finished_total{status=\"failed\"}"),
        1.0
    );
    assert_eq!(
        m("remora_worker_ssh_connect_seconds_count"),
        1.0,
        "both jobs on one connection"
    );
    assert!(m("remora_worker_ssh_connect_seconds_sum") > 0.0);
    assert_eq!(m("remora_worker_ssh_connections"), 1.0);
    assert_eq!(m("remora_worker_ssh_channels"), 0.0);
    assert_eq!(m("remora_worker_jobs_running"), 0.0);
    assert_eq!(
        m("remora_worker_output_bytes_total{stream=\"stdout\"}"),
        3.0
    );
    assert_eq!(
        m("remora_worker_output_bytes_total{stream=\"stderr\"}"),
        2.0
    );

    // The API's drain action (audited) reaches the worker over the queue's pub/sub.
    let (st, v) = stack.post("/api/v1/workers/nope/drain", json!(null)).await;
    assert_eq!(st, 404, "{v}");
    let (st, v) = stack
        .post("/api/v1/workers/w-metrics/drain", json!(null))
        .await;
    assert_eq!(st, 202, "{v}");
    assert_eq!(v["id"], "w-metrics");
    let st = w.wait_exit(Duration::from_secs(15)).await;
    assert!(st.success(), "worker exit {st:?}: {}", w.log_text());
    assert!(w.log_text().contains("drain requested"));
    let audit = stack.get("/api/v1/audit").await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "worker.drain"),
        "{audit}"
    );
}

/// Issue 14 item 5: heartbeats and the reaper use the database's clock. A worker whose clock is
/// 40 s behind the API's (far past `worker_down_after` = 5 s) keeps its job running through
/// several reaper passes, and the job completes once; it is not failed as `worker_lost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_whose_clock_is_40s_behind_keeps_its_jobs() {
    let host = require!(SshHost::start());
    let stack = stack_without_worker().await;
    let sid = stack.add_server("h", &host).await;
    let _w = WorkerProc::spawn(
        &stack,
        "w-skewed",
        &[("REMORA_TEST_CLOCK_OFFSET_MS", "-40000")],
    )
    .await;
    // The reaper runs every 5 s: 12 s spans at least two passes.
    let id = stack.submit(&sid, "sleep 12; echo survived").await;
    let j = stack.wait_final(&id, Duration::from_secs(40)).await;
    assert_eq!(
        (j["status"].as_str(), j["exit_code"].as_i64()),
        (Some("completed"), Some(0)),
        "{j}"
    );
    assert_eq!(
        stack.get(&format!("/api/v1/jobs/{id}/logs")).await["stdout"],
        "survived\n"
    );
    let ws = stack.get("/api/v1/workers").await;
    let list = ws
        .as_array()
        .cloned()
        .or_else(|| ws["workers"].as_array().cloned())
        .unwrap_or_default();
    let w = list.iter().find(|x| x["id"] == "w-skewed").cloned();
    assert_eq!(
        w.as_ref().map(|w| w["status"].clone()),
        Some(json!("up")),
        "{ws}"
    );
}

/// Warm reuse: a batch to hosts whose keys are not pinned yet logs in once
/// per host (trust on first use pins the key), and a second batch right
/// after reuses those first connections — one login per host in all, not
/// one per batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_batch_reuses_the_first_use_connections() {
    let mut hosts = Vec::new();
    for ip in ["127.0.0.1", "127.0.1.2", "127.0.1.3", "127.0.1.4"] {
        hosts.push(require!(SshHost::start_on(ip)));
    }
    let stack = stack(Some(Default::default())).await;
    let mut names = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let name = format!("h{i}");
        stack.add_server(&name, h).await;
        names.push(name);
    }
    let before: Vec<usize> = hosts.iter().map(|h| h.connection_count()).collect();
    for round in 0..2 {
        // Two jobs per host per batch, claimed at once: one connection
        // serves both even before the key is pinned.
        let mut targets = names.clone();
        targets.extend(names.iter().cloned());
        let (st, v) = stack
            .post(
                "/api/v1/jobs",
                json!({ "server_ids": names, "command": "echo hi" }),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        let (st, v2) = stack
            .post(
                "/api/v1/jobs",
                json!({ "server_ids": names, "command": "echo hi" }),
            )
            .await;
        assert_eq!(st, 201, "{v2}");
        let jobs: Vec<String> = v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .chain(v2["jobs"].as_array().unwrap())
            .map(|j| j["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(jobs.len(), targets.len());
        for id in &jobs {
            let j = stack.wait_final(id, Duration::from_secs(60)).await;
            assert_eq!(j["status"], "completed", "round {round}: {j}");
        }
    }
    for (i, h) in hosts.iter().enumerate() {
        assert_eq!(
            h.connection_count() - before[i],
            1,
            "host {i}: one login for both batches: {}",
            h.log()
        );
    }
}

/// The worker keeps the connection target it built for a server while the connection
/// generation stays the same (no server, secret or CA read per job), and a change of the
/// server counts from the next job: a job after the user was changed to one that does not
/// exist fails to authenticate instead of running on the cached target and its pooled
/// connection, and the job after the change back runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_changed_server_counts_from_the_next_job_despite_the_target_cache() {
    let host = require!(SshHost::start());
    let stack = stack(Some(Default::default())).await;
    let body = |user: &str| json!({ "name": "cached", "hostname": host.host(), "port": host.port(), "user": user, "private_key": host.private_key(), "max_concurrency": 4 });
    let (st, v) = stack.post("/api/v1/servers", body(host.user())).await;
    assert_eq!(st, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    for round in 0..3 {
        let j = stack.submit("cached", "echo same").await;
        let j = stack.wait_final(&j, Duration::from_secs(60)).await;
        assert_eq!(j["status"], "completed", "round {round}: {j}");
    }
    let g = stack.store.conn_generation().await.unwrap();
    let (st, v) = stack
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/servers/{id}"),
            Some(body("no-such-user-here")),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert!(stack.store.conn_generation().await.unwrap() > g);
    let j = stack.submit("cached", "echo changed").await;
    let j = stack.wait_final(&j, Duration::from_secs(60)).await;
    assert_eq!(
        j["status"], "failed",
        "a job ran as the old user after the change: {j}"
    );
    assert_eq!(j["error_code"], "auth_failed", "{j}");
    let (st, v) = stack
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/servers/{id}"),
            Some(body(host.user())),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let j = stack.submit("cached", "echo back").await;
    let j = stack.wait_final(&j, Duration::from_secs(60)).await;
    assert_eq!(j["status"], "completed", "{j}");
}
