use crate::stack::Stack;
use remora_testkit::require;
use remora_testkit::sshd::SshHost;
use std::process::Output;

/// Run the `remora` binary against the stack (off the async runtime).
pub async fn remora(stack: &Stack, args: &[&str], stdin: Option<&str>) -> Output {
    let url = stack.url.clone();
    let token = stack.token.clone();
    let cfg = stack.dir.path().join("profiles.json");
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let stdin = stdin.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let mut c = assert_cmd::Command::cargo_bin("remora").unwrap();
        c.env("REMORA_API_URL", url)
            .env("REMORA_TOKEN", token)
            .env("REMORA_CONFIG", cfg)
            .env("REMORA_DATA_DIR", "/nonexistent")
            .args(&args);
        if let Some(s) = stdin {
            c.write_stdin(s);
        }
        c.timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submit_follow_exits_with_the_jobs_code() {
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    let key = host.private_key_path().to_str().unwrap().to_string();
    let port = host.port().to_string();
    let out = remora(
        &stack,
        &[
            "servers",
            "add",
            "web1",
            "--host",
            &host.host(),
            "--port",
            &port,
            "--user",
            host.user(),
            "--key-file",
            &key,
        ],
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = remora(
        &stack,
        &[
            "submit", "--server", "web1", "--follow", "--", "sh", "-c", "exit 4",
        ],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));

    let out = remora(
        &stack,
        &[
            "submit",
            "--server",
            "web1",
            "--follow",
            "--",
            "sh",
            "-c",
            "echo o; echo e >&2; exit 5",
        ],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(text(&out.stdout), "o\n");
    assert_eq!(text(&out.stderr), "e\n");

    let out = remora(
        &stack,
        &[
            "submit", "-s", "web1", "--script", "-", "--follow", "--", "a b",
        ],
        Some("echo \"got:$1\"\nexit 0\n"),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "got:a b\n");

    // Without --follow: prints the id; logs and jobs list find it.
    let out = remora(
        &stack,
        &["submit", "-s", "web1", "--", "echo", "hello world"],
        None,
    )
    .await;
    assert!(out.status.success());
    let id = text(&out.stdout).trim().to_string();
    stack
        .wait_final(&id, std::time::Duration::from_secs(30))
        .await;
    let out = remora(&stack, &["logs", &id], None).await;
    assert_eq!(text(&out.stdout), "hello world\n");
    let out = remora(&stack, &["jobs", "list", "-o", "json"], None).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pagination"]["total"], 4);
    let out = remora(&stack, &["jobs", "list"], None).await;
    assert!(text(&out.stdout).contains(&id), "{}", text(&out.stdout));
    let out = remora(&stack, &["servers", "list"], None).await;
    assert!(text(&out.stdout).contains("web1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_exit_nonzero_with_the_reason() {
    let stack = Stack::new().await;
    let out = tokio::task::spawn_blocking(|| {
        assert_cmd::Command::cargo_bin("remora")
            .unwrap()
            .env("REMORA_DATA_DIR", "/nonexistent")
            .env("REMORA_CONFIG", "/nonexistent/p.json")
            .args([
                "--url",
                "http://127.0.0.1:1",
                "--token",
                "x",
                "jobs",
                "list",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("http://127.0.0.1:1"),
        "{}",
        text(&out.stderr)
    );

    let url = stack.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("remora")
            .unwrap()
            .env("REMORA_DATA_DIR", "/nonexistent")
            .env("REMORA_CONFIG", "/nonexistent/p.json")
            .args(["--url", &url, "--token", "wrong", "jobs", "list"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("token") && err.contains("401"), "{err}");

    let out = remora(&stack, &["submit", "--server", "ghost", "--", "true"], None).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("ghost"), "{}", text(&out.stderr));
}
