//! Issue 11, per-job options against real servers: a command killed by a signal reports it,
//! `env` arrives verbatim (bash, fish, Dropbear), `pty` gives a terminal and still cancels the
//! tree, and `become` runs under sudo with the server's sudo password, which appears nowhere.

use crate::any_shell::wait_running;
use crate::stack::Stack;
use remora_testkit::require;
use remora_testkit::shells::LoginShell;
use remora_testkit::sshd::{SshHost, SshHostOptions};
use remora_testkit::sudo::SudoRule;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A command job on `sid` (any_shell's submitter, on `/api/v1/jobs`).
async fn submit(stack: &Stack, sid: &str, body: Value) -> String {
    crate::any_shell::submit(stack, sid, "/api/v1/jobs", body).await
}

async fn run(stack: &Stack, sid: &str, body: Value) -> (Value, Value) {
    let id = submit(stack, sid, body).await;
    let job = stack.wait_final(&id, Duration::from_secs(60)).await;
    let logs = stack.get(&format!("/api/v1/jobs/{id}/logs")).await;
    (job, logs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_killed_by_a_signal_reports_the_signal_on_openssh() {
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    let sid = stack.add_server("h", &host).await;
    let (job, logs) = run(
        &stack,
        &sid,
        json!({ "command": "echo before; sh -c 'kill -s KILL $$'" }),
    )
    .await;
    assert_eq!(
        (
            job["status"].as_str(),
            job["exit_signal"].as_str(),
            job["error_code"].as_str(),
            job["exit_code"].as_i64()
        ),
        (Some("failed"), Some("KILL"), Some("signaled"), None),
        "{job}"
    );
    assert_eq!(logs["stdout"], "before\n");
    let (job, _) = run(&stack, &sid, json!({ "command": "exit 130" })).await;
    assert_eq!(
        job["exit_code"], 130,
        "an explicit exit stays a code: {job}"
    );
    assert!(job["exit_signal"].is_null(), "{job}");
}

const TRICKY: &str = "q'\"$HOME `id` \\ !x !! (p) * größe\nline2";

async fn env_case(host: SshHost, label: &str) {
    let stack = Stack::new().await;
    let sid = stack.add_server("h", &host).await;
    let env = json!({ "A": TRICKY, "B_2": "", "_c": "$(touch inj)" });
    let (job, logs) = run(
        &stack,
        &sid,
        json!({ "command": "printf '[%s]' \"$A\" \"$B_2\" \"$_c\"; [ -e \"$HOME/inj\" ] && echo injected; true", "env": env }),
    )
    .await;
    assert_eq!(job["status"], "completed", "{label}: {job}");
    assert_eq!(job["env"], env, "{label}: the job JSON carries env");
    assert_eq!(
        logs["stdout"],
        format!("[{TRICKY}][][$(touch inj)]"),
        "{label}"
    );
    // A script job gets it too, and a rerun keeps it.
    let (job, logs) = {
        let mut b =
            json!({ "script": "printf '%s' \"$A\"", "shell": "/bin/sh", "env": {"A": TRICKY} });
        b["server_id"] = json!(sid);
        let (st, v) = stack.post("/api/v1/jobs/script", b).await;
        assert_eq!(st, 201, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        let job = stack.wait_final(&id, Duration::from_secs(60)).await;
        (
            job.clone(),
            stack.get(&format!("/api/v1/jobs/{id}/logs")).await,
        )
    };
    assert_eq!(logs["stdout"], TRICKY, "{label}: script {job}");
    let (st, re) = stack
        .post(
            &format!("/api/v1/jobs/{}/rerun", job["id"].as_str().unwrap()),
            json!(null),
        )
        .await;
    assert_eq!(st, 201, "{re}");
    assert_eq!(re["env"], json!({"A": TRICKY}), "{label}: rerun keeps env");
    stack
        .wait_final(re["id"].as_str().unwrap(), Duration::from_secs(60))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn env_arrives_verbatim_for_a_bash_user() {
    env_case(
        require!(SshHostOptions::new().login_shell(LoginShell::Bash).start()),
        "bash",
    )
    .await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn env_arrives_verbatim_for_a_fish_user() {
    env_case(
        require!(SshHostOptions::new().login_shell(LoginShell::Fish).start()),
        "fish",
    )
    .await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn env_arrives_verbatim_on_dropbear() {
    env_case(
        require!(SshHostOptions::new().dropbear().start()),
        "dropbear",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_options_are_a_422_naming_the_problem() {
    let stack = Stack::new().await;
    let sid = stack.add_server_raw("h").await;
    let bad = |body: Value| {
        let mut body = body;
        body["server_id"] = json!(sid);
        body
    };
    let many: serde_json::Map<String, Value> =
        (0..129).map(|i| (format!("V{i}"), json!("x"))).collect();
    for (path, body, field, text) in [
        (
            "/api/v1/jobs",
            json!({"command": "true", "env": {"1A": "x"}}),
            "env",
            "`1A` is not valid",
        ),
        (
            "/api/v1/jobs",
            json!({"command": "true", "env": {"A-B": "x"}}),
            "env",
            "[A-Za-z_][A-Za-z0-9_]*",
        ),
        (
            "/api/v1/jobs",
            json!({"command": "true", "env": {"A": "a\u{0}b"}}),
            "env.A",
            "NUL",
        ),
        (
            "/api/v1/jobs",
            json!({"command": "true", "env": many}),
            "env",
            "REMORA_MAX_ENV_VARS",
        ),
        (
            "/api/v1/jobs",
            json!({"command": "true", "env": {"A": "x".repeat(70_000)}}),
            "env",
            "REMORA_MAX_ENV_BYTES",
        ),
        (
            "/api/v1/jobs/script",
            json!({"script": "true", "shell": "/bin/sh", "pty": true}),
            "pty",
            "command jobs",
        ),
        (
            "/api/v1/jobs",
            json!({"command": "true", "become_user": "root"}),
            "become_user",
            "needs `become: true`",
        ),
        (
            "/api/v1/jobs",
            json!({"command": "true", "become": true, "become_user": "a b"}),
            "become_user",
            "not a user name",
        ),
    ] {
        let (st, v) = stack.post(path, bad(body.clone())).await;
        assert_eq!(st, 422, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
        assert!(v.to_string().contains(text), "{body}: {v}");
    }
    // A batch (several servers) carries the options on every job.
    let sid2 = stack.add_server_raw("h2").await;
    let (st, v) = stack
        .post(
            "/api/v1/jobs",
            json!({"command": "true", "server_ids": [sid, sid2], "env": {"K": "v"}, "become": true, "become_user": "deploy", "pty": true}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let jobs = v["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    for j in jobs {
        let got = stack
            .get(&format!("/api/v1/jobs/{}", j["id"].as_str().unwrap()))
            .await;
        assert_eq!(
            (
                &got["env"],
                &got["become"],
                &got["become_user"],
                &got["pty"]
            ),
            (
                &json!({"K": "v"}),
                &json!(true),
                &json!("deploy"),
                &json!(true)
            ),
            "{got}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pty_job_has_a_terminal_and_its_cancel_kills_the_tree() {
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    let sid = stack.add_server("h", &host).await;
    let (job, logs) = run(
        &stack,
        &sid,
        json!({ "command": "tty; echo to-stderr >&2; printf '%s\\n' \"$1\"", "args": ["a'b"], "pty": true }),
    )
    .await;
    assert_eq!(job["status"], "completed", "{job} {logs}");
    let out = logs["stdout"].as_str().unwrap();
    assert!(out.starts_with("/dev/pts/"), "tty prints a device: {logs}");
    assert!(
        out.contains("to-stderr\n"),
        "stderr merges into stdout: {logs}"
    );
    assert!(out.ends_with("a'b\n"), "{logs}");
    assert_eq!(logs["stderr"], "", "{logs}");

    let id = submit(
        &stack,
        &sid,
        json!({ "command": "setsid sleep 1001 & sleep 1002 & sleep 1000; wait", "pty": true }),
    )
    .await;
    wait_running(&host, "sleep 1001").await;
    wait_running(&host, "sleep 1000").await;
    let (st, v) = stack
        .post(&format!("/api/v1/jobs/{id}/cancel"), json!(null))
        .await;
    assert_eq!(st, 202, "{v}");
    let asked = Instant::now();
    let job = stack.wait_final(&id, Duration::from_secs(10)).await;
    assert_eq!(job["status"], "canceled", "{job}");
    assert!(
        host.wait_no_user_processes(Duration::from_secs(3).saturating_sub(asked.elapsed())),
        "left on the host after cancel of a pty job: {:?}",
        host.user_processes()
    );
}

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Samples every process's argv on the machine (`ps -eo args`) until stopped.
fn sample_processes(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(usize, String)> {
    std::thread::spawn(move || {
        let (mut n, mut all) = (0, String::new());
        while !stop.load(Ordering::Relaxed) {
            if let Ok(o) = std::process::Command::new("ps")
                .args(["-eo", "args"])
                .output()
            {
                all.push_str(&String::from_utf8_lossy(&o.stdout));
                n += 1;
            }
        }
        (n, all)
    })
}

fn files_contain(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = vec![];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if let Ok(bytes) = std::fs::read(e.path()) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(e.path().display().to_string());
            }
        }
    }
    hits
}

async fn become_case(host: SshHost, label: &str, capture_logs: bool) {
    let buf = Buf::default();
    if capture_logs {
        let writer = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .try_init();
    }
    let stack = Stack::new().await;
    let pw = host.password().to_string();
    let (st, s) = stack.post("/api/v1/servers", json!({ "name": "h", "hostname": host.host(), "port": host.port(), "user": host.user(), "private_key": host.private_key(), "sudo_password": pw })).await;
    assert_eq!(st, 201, "{s}");
    assert_eq!(s["has_sudo_password"], true, "{s}");
    assert!(!s.to_string().contains(&pw), "{label}: server JSON: {s}");
    let sid = s["id"].as_str().unwrap().to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_processes(stop.clone());
    let id = submit(
        &stack,
        &sid,
        json!({ "command": "id -u; printf '%s\\n' \"$E\"; sleep 1; id -un", "become": true, "env": {"E": "e'$x"}, "timeout": 30 }),
    )
    .await;
    let job = stack.wait_final(&id, Duration::from_secs(60)).await;
    stop.store(true, Ordering::Relaxed);
    let (samples, ps) = sampler.join().unwrap();
    let logs = stack.get(&format!("/api/v1/jobs/{id}/logs")).await;
    assert_eq!(job["status"], "completed", "{label}: {job} {logs}");
    assert_eq!(logs["stdout"], "0\ne'$x\nroot\n", "{label}: {logs}");
    assert!(
        samples > 5,
        "{label}: the process list was really sampled ({samples})"
    );
    assert!(ps.contains("sudo"), "{label}: the samples saw sudo run");
    assert!(
        !ps.contains(&pw),
        "{label}: the sudo password is in the process list"
    );
    assert!(!logs.to_string().contains(&pw), "{label}: output");
    assert!(!job.to_string().contains(&pw), "{label}: job JSON");

    // Another user.
    let (job, logs) = run(
        &stack,
        &sid,
        json!({ "command": "id -un", "become": true, "become_user": "nobody" }),
    )
    .await;
    assert_eq!(
        (job["status"].as_str(), logs["stdout"].as_str()),
        (Some("completed"), Some("nobody\n")),
        "{label}: {job}"
    );

    // A wrong password: become_failed, fast, not waiting on a prompt.
    let (st, v) = stack
        .call(
            reqwest::Method::PUT,
            "/api/v1/servers/h",
            Some(json!({"sudo_password": "not-the-password"})),
        )
        .await;
    assert_eq!((st, &v["has_sudo_password"]), (200, &json!(true)), "{v}");
    let started = Instant::now();
    let (job, logs) = run(
        &stack,
        &sid,
        json!({ "command": "echo ran", "become": true, "timeout": 20 }),
    )
    .await;
    assert_eq!(
        (job["status"].as_str(), job["error_code"].as_str()),
        (Some("failed"), Some("become_failed")),
        "{label}: {job} {logs}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{label}: within the timeout"
    );
    assert!(!logs["stdout"].as_str().unwrap().contains("ran"), "{logs}");

    // The database holds the password only sealed; the worker logged it nowhere.
    let in_files = files_contain(stack.dir.path(), pw.as_bytes());
    assert!(in_files.is_empty(), "{label}: password in {in_files:?}");
    if capture_logs {
        let logs = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
        assert!(
            logs.contains("job finished"),
            "{label}: logs really captured"
        );
        assert!(
            !logs.contains(&pw),
            "{label}: the password is in a log line"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn become_with_a_sudo_password_for_a_bash_user() {
    become_case(
        require!(SshHostOptions::new()
            .login_shell(LoginShell::Bash)
            .sudo(SudoRule::Password)
            .start()),
        "bash",
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn become_with_a_sudo_password_for_a_fish_user() {
    become_case(
        require!(SshHostOptions::new()
            .login_shell(LoginShell::Fish)
            .sudo(SudoRule::Password)
            .start()),
        "fish",
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn become_without_a_password_and_outside_sudoers() {
    let ok = require!(SshHostOptions::new().sudo(SudoRule::NoPassword).start());
    let none = require!(SshHost::start());
    let stack = Stack::new().await;
    let a = stack.add_server("nopasswd", &ok).await;
    let b = stack.add_server("no-sudo", &none).await;
    let (job, logs) = run(&stack, &a, json!({ "command": "id -u", "become": true })).await;
    assert_eq!(
        (job["status"].as_str(), logs["stdout"].as_str()),
        (Some("completed"), Some("0\n")),
        "{job}"
    );
    let started = Instant::now();
    let (job, _) = run(
        &stack,
        &b,
        json!({ "command": "echo ran", "become": true, "timeout": 20 }),
    )
    .await;
    assert_eq!(
        (job["status"].as_str(), job["error_code"].as_str()),
        (Some("failed"), Some("become_failed")),
        "{job}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));

    // Cancel of a become job: the root-side watchdog ends the tree.
    // Durations unique to this run, so nothing else on the machine matches.
    let (s1, s2) = (
        format!("sleep 10{}", std::process::id()),
        format!("sleep 20{}", std::process::id()),
    );
    let id = submit(
        &stack,
        &a,
        json!({ "command": format!("{s1} & {s2}; wait"), "become": true }),
    )
    .await;
    let start = Instant::now();
    let has = |needle: &str| {
        std::process::Command::new("ps")
            .args(["-eo", "args"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l.starts_with(needle))
            })
            .unwrap_or(false)
    };
    while !has(&s2) {
        assert!(start.elapsed() < Duration::from_secs(10), "never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (st, _) = stack
        .post(&format!("/api/v1/jobs/{id}/cancel"), json!(null))
        .await;
    assert_eq!(st, 202);
    let asked = Instant::now();
    let job = stack.wait_final(&id, Duration::from_secs(10)).await;
    assert_eq!(job["status"], "canceled", "{job}");
    while has(&s1) || has(&s2) {
        assert!(
            asked.elapsed() < Duration::from_secs(3),
            "root processes left after cancel"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
