//! Issue 11: the same table of jobs on every login shell, on Dropbear and on a BusyBox-only
//! host — quoting, exit codes, scripts with args, cancel and timeout of a process tree, and the
//! session-loss watchdog.

use crate::stack::Stack;
use remora_testkit::require;
use remora_testkit::shells::LoginShell;
use remora_testkit::sshd::{SshHost, SshHostOptions};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ARGS: [&str; 12] = [
    "a'b",
    "c\\d",
    "$HOME",
    "`touch inj2`",
    "!x",
    "!!",
    "(touch inj)",
    "*",
    "l1\nl2",
    "größe 日本 €",
    "",
    "x\"y",
];

fn args() -> Vec<String> {
    ARGS.iter().map(|s| s.to_string()).collect()
}

/// One case: the request (path, body without server_id), then the expected
/// (status, exit_code, stdout).
struct Case {
    name: &'static str,
    path: &'static str,
    body: Value,
    status: &'static str,
    exit_code: i64,
    stdout: String,
}

fn cases() -> Vec<Case> {
    let bracketed: String = ARGS.iter().map(|a| format!("[{a}]")).collect();
    vec![
        Case {
            name: "args are data, whatever they hold",
            path: "/api/v1/jobs",
            body: json!({ "command": "printf '[%s]'", "args": args() }),
            status: "completed",
            exit_code: 0,
            stdout: bracketed.clone(),
        },
        Case {
            name: "multi-line command with quotes, !, backticks, $(), parentheses, a glob",
            path: "/api/v1/jobs",
            body: json!({ "command": "x='it'\"'\"'s'\necho \"$x\" \"a!b\" !! `echo bt` $(echo sub) \"(p)\"\nprintf '%s\\n' 'q\\e'\ncd /; set -- /d?v; echo \"$1\"" }),
            status: "completed",
            exit_code: 0,
            stdout: "it's a!b !! bt sub (p)\nq\\e\n/dev\n".into(),
        },
        Case {
            name: "exit code and stderr",
            path: "/api/v1/jobs",
            body: json!({ "command": "echo out; echo err >&2; exit 7" }),
            status: "failed",
            exit_code: 7,
            stdout: "out\n".into(),
        },
        Case {
            name: "a script with args",
            path: "/api/v1/jobs/script",
            body: json!({ "script": "printf '[%s]' \"$@\"\necho\nexit 3\n", "shell": "/bin/sh", "args": args() }),
            status: "failed",
            exit_code: 3,
            stdout: format!("{bracketed}\n"),
        },
        Case {
            name: "the args above ran nothing",
            path: "/api/v1/jobs",
            body: json!({ "command": "if [ -e \"$HOME/inj\" ] || [ -e \"$HOME/inj2\" ]; then echo injected; fi; echo checked" }),
            status: "completed",
            exit_code: 0,
            stdout: "checked\n".into(),
        },
    ]
}

pub(crate) async fn submit(stack: &Stack, sid: &str, path: &str, mut body: Value) -> String {
    body["server_id"] = json!(sid);
    let (st, v) = stack.post(path, body).await;
    assert_eq!(st, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// Waits until a process whose command line contains `needle` runs on the host.
pub(crate) async fn wait_running(host: &SshHost, needle: &str) {
    let start = Instant::now();
    while !host
        .user_processes()
        .iter()
        .any(|(_, c)| c.contains(needle))
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{needle} never started: {:?}",
            host.user_processes()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The whole table on one host.
async fn table(host: SshHost, label: &str) {
    let stack = Stack::new().await;
    let sid = stack.add_server("h", &host).await;

    // The data cases, all at once (they share the pooled connection).
    let mut ids = vec![];
    for c in cases().into_iter().take(4) {
        ids.push((submit(&stack, &sid, c.path, c.body.clone()).await, c));
    }
    let mut last = cases();
    let check = last.pop().unwrap();
    for (id, c) in &ids {
        let job = stack.wait_final(id, Duration::from_secs(60)).await;
        let logs = stack.get(&format!("/api/v1/jobs/{id}/logs")).await;
        assert_eq!(
            (
                job["status"].as_str(),
                job["exit_code"].as_i64(),
                logs["stdout"].as_str()
            ),
            (Some(c.status), Some(c.exit_code), Some(c.stdout.as_str())),
            "{label}: {}: {job} {logs}",
            c.name
        );
        if c.exit_code == 7 {
            assert_eq!(logs["stderr"], "err\n", "{label}");
        }
    }
    let id = submit(&stack, &sid, check.path, check.body.clone()).await;
    stack.wait_final(&id, Duration::from_secs(30)).await;
    let logs = stack.get(&format!("/api/v1/jobs/{id}/logs")).await;
    assert_eq!(
        logs["stdout"],
        check.stdout.as_str(),
        "{label}: {}",
        check.name
    );

    // Cancel of a tree with a background and a setsid child.
    let id = submit(
        &stack,
        &sid,
        "/api/v1/jobs",
        json!({ "command": "setsid sleep 1001 & sleep 1002 & sleep 1000; wait" }),
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
    assert_eq!(job["status"], "canceled", "{label}: {job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap_or("")
            .contains("every process confirmed gone"),
        "{label}: {job}"
    );
    assert!(
        host.wait_no_user_processes(Duration::from_secs(3).saturating_sub(asked.elapsed())),
        "{label}: left on the host after cancel: {:?}",
        host.user_processes()
    );

    // Timeout.
    let id = submit(
        &stack,
        &sid,
        "/api/v1/jobs",
        json!({ "command": "setsid sleep 1003 & sleep 1000", "timeout": 2 }),
    )
    .await;
    let job = stack.wait_final(&id, Duration::from_secs(20)).await;
    let ended = Instant::now();
    assert_eq!(job["status"], "timed_out", "{label}: {job}");
    assert!(
        host.wait_no_user_processes(Duration::from_secs(3).saturating_sub(ended.elapsed())),
        "{label}: left on the host after timeout: {:?}",
        host.user_processes()
    );
}

fn on_shell(shell: LoginShell) -> anyhow::Result<SshHost> {
    SshHostOptions::new().login_shell(shell).start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn table_on_bash() {
    table(require!(on_shell(LoginShell::Bash)), "bash").await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn table_on_dash() {
    table(require!(on_shell(LoginShell::Dash)), "dash").await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn table_on_zsh() {
    table(require!(on_shell(LoginShell::Zsh)), "zsh").await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn table_on_ksh() {
    table(require!(on_shell(LoginShell::Ksh)), "ksh").await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn table_on_fish() {
    table(require!(on_shell(LoginShell::Fish)), "fish").await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn table_on_tcsh() {
    table(require!(on_shell(LoginShell::Tcsh)), "tcsh").await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn table_on_busybox_sh() {
    table(require!(on_shell(LoginShell::BusyBoxSh)), "busybox sh").await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn table_on_dropbear() {
    table(
        require!(SshHostOptions::new().dropbear().start()),
        "dropbear",
    )
    .await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn table_on_a_busybox_only_host() {
    table(
        require!(SshHostOptions::new().busybox_chroot().start()),
        "busybox host",
    )
    .await;
}

/// The parent pid of `pid`, from /proc.
fn ppid(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()
}

/// The SSH session process of the job running `needle` dies (network cut, worker gone): the
/// watchdog on the host notices and kills the job's tree, on OpenSSH, on Dropbear (whose
/// session process stays root) and on BusyBox.
async fn session_loss(host: SshHost, label: &str, long_ok: bool) {
    let stack = Stack::new().await;
    let sid = stack.add_server("h", &host).await;
    if long_ok {
        // A job longer than the watchdog's period completes (Dropbear used to kill it at ~1 s).
        let id = submit(
            &stack,
            &sid,
            "/api/v1/jobs",
            json!({ "command": "sleep 10; echo done" }),
        )
        .await;
        let job = stack.wait_final(&id, Duration::from_secs(40)).await;
        let logs = stack.get(&format!("/api/v1/jobs/{id}/logs")).await;
        assert_eq!(
            (job["status"].as_str(), logs["stdout"].as_str()),
            (Some("completed"), Some("done\n")),
            "{label}: {job}"
        );
    }
    let _id = submit(
        &stack,
        &sid,
        "/api/v1/jobs",
        json!({ "command": "setsid sleep 1001 & sleep 1000" }),
    )
    .await;
    wait_running(&host, "sleep 1000").await;
    let sleep = host
        .user_processes()
        .into_iter()
        .find(|(_, c)| c.contains("sleep 1000"))
        .unwrap()
        .0;
    let shell = ppid(sleep).unwrap();
    let session = ppid(shell).unwrap();
    let st = std::process::Command::new("kill")
        .args(["-KILL", &session.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(
        host.wait_no_user_processes(Duration::from_secs(4)),
        "{label}: the job survived the loss of its session: {:?}",
        host.user_processes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn session_loss_on_openssh() {
    session_loss(require!(SshHost::start()), "openssh", false).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn session_loss_on_dropbear_and_long_jobs_run() {
    session_loss(
        require!(SshHostOptions::new().dropbear().start()),
        "dropbear",
        true,
    )
    .await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn session_loss_on_a_busybox_only_host() {
    session_loss(
        require!(SshHostOptions::new().busybox_chroot().start()),
        "busybox host",
        false,
    )
    .await;
}

/// `cksum` of `data`, by the local tool.
fn cksum(data: &[u8]) -> String {
    use std::io::Write;
    let mut c = std::process::Command::new("cksum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(data).unwrap();
    String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap()
}

/// Text full of what shells interpret, `len` bytes, newline-free when `lines` is false.
fn nasty(len: usize, lines: bool) -> String {
    let unit = if lines {
        "it's a \"test\" $HOME `x` !x \\ (y) * é\n"
    } else {
        "it's a \"test\" $HOME `x` !x \\ (y) * e "
    };
    unit.repeat(len / unit.len() + 1)[..len].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_1_mib_script_and_a_256_kib_command_run_intact_beside_another_job() {
    use remora_domain::command::{sh_quote, DEFAULT_MAX_COMMAND_BYTES, DEFAULT_MAX_SCRIPT_BYTES};
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    let sid = stack.add_server("h", &host).await;
    let other = submit(
        &stack,
        &sid,
        "/api/v1/jobs",
        json!({ "command": "sleep 3; echo other" }),
    )
    .await;
    wait_running(&host, "sleep 3").await;

    // Script: a heredoc of the payload into cksum, exactly the limit in all.
    let (head, tail) = ("cat <<'R_EOF' | cksum\n", "\nR_EOF\n");
    let payload = nasty(DEFAULT_MAX_SCRIPT_BYTES - head.len() - tail.len(), true)
        .trim_end_matches('\n')
        .to_string();
    let pad = DEFAULT_MAX_SCRIPT_BYTES - head.len() - tail.len() - payload.len();
    let payload = format!("{payload}{}", "x".repeat(pad));
    let script = format!("{head}{payload}{tail}");
    assert_eq!(script.len(), DEFAULT_MAX_SCRIPT_BYTES);
    let sjob = submit(
        &stack,
        &sid,
        "/api/v1/jobs/script",
        json!({ "script": script, "shell": "/bin/sh" }),
    )
    .await;

    // Command: printf of a quoted payload into cksum, exactly the limit.
    let (pre, post) = ("printf %s ", " | cksum");
    let mut n = DEFAULT_MAX_COMMAND_BYTES / 2;
    let mut cmd;
    loop {
        cmd = format!("{pre}{}{post}", sh_quote(&nasty(n, false)));
        if cmd.len() >= DEFAULT_MAX_COMMAND_BYTES - 40 {
            break;
        }
        n += (DEFAULT_MAX_COMMAND_BYTES - cmd.len()) / 2;
    }
    let short = DEFAULT_MAX_COMMAND_BYTES - cmd.len();
    let cpayload = format!("{}{}", nasty(n, false), "y".repeat(short));
    let cmd = format!("{pre}{}{post}", sh_quote(&cpayload));
    assert_eq!(cmd.len(), DEFAULT_MAX_COMMAND_BYTES);
    let cjob = submit(&stack, &sid, "/api/v1/jobs", json!({ "command": cmd })).await;

    for (id, want) in [
        (&sjob, cksum(format!("{payload}\n").as_bytes())),
        (&cjob, cksum(cpayload.as_bytes())),
        (&other, "other\n".to_string()),
    ] {
        let job = stack.wait_final(id, Duration::from_secs(60)).await;
        let logs = stack.get(&format!("/api/v1/jobs/{id}/logs")).await;
        assert_eq!(
            (job["status"].as_str(), logs["stdout"].as_str()),
            (Some("completed"), Some(want.as_str())),
            "{job} {logs}"
        );
    }

    // One byte over either limit: 422 naming it, nothing queued.
    let (st, v) = stack
        .post(
            "/api/v1/jobs/script",
            json!({ "server_id": sid, "script": format!("{script}#"), "shell": "/bin/sh" }),
        )
        .await;
    assert_eq!(st, 422, "{v}");
    assert!(v.to_string().contains("REMORA_MAX_SCRIPT_BYTES"), "{v}");
    let (st, v) = stack
        .post(
            "/api/v1/jobs",
            json!({ "server_id": sid, "command": format!("{cmd}#") }),
        )
        .await;
    assert_eq!(st, 422, "{v}");
    assert!(v.to_string().contains("REMORA_MAX_COMMAND_BYTES"), "{v}");
    let (st, v) = stack
        .post(
            "/api/v1/jobs",
            json!({ "server_id": sid, "command": "echo", "args": ["x".repeat(DEFAULT_MAX_COMMAND_BYTES)] }),
        )
        .await;
    assert_eq!(st, 422, "{v}");
    assert!(v.to_string().contains("REMORA_MAX_COMMAND_BYTES"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_python3_script_gets_its_args() {
    if !std::path::Path::new("/usr/bin/python3").exists() {
        return;
    }
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    let sid = stack.add_server("h", &host).await;
    let id = submit(
        &stack,
        &sid,
        "/api/v1/jobs/script",
        json!({ "script": "import sys\nprint(sys.argv[1:])\n", "shell": "/usr/bin/python3", "args": ["a", "it's", "-s"] }),
    )
    .await;
    let job = stack.wait_final(&id, Duration::from_secs(30)).await;
    let logs = stack.get(&format!("/api/v1/jobs/{id}/logs")).await;
    assert_eq!(
        (job["status"].as_str(), logs["stdout"].as_str()),
        (Some("completed"), Some("['a', \"it's\", '-s']\n")),
        "{job} {logs}"
    );
}
