//! Every CLI command against a spawned stack and a real sshd, including
//! failure exits, `--help` examples, profiles, and Ctrl-C during `--follow`.

use crate::stack::Stack;
use remora_testkit::require;
use remora_testkit::sshd::{KeyKind, SshHost};
use serde_json::Value;
use std::process::Output;
use std::time::{Duration, Instant};

struct Cli {
    url: String,
    token: String,
    cfg: std::path::PathBuf,
}

impl Cli {
    fn new(stack: &Stack) -> Cli {
        Cli {
            url: stack.url.clone(),
            token: stack.token.clone(),
            cfg: stack.dir.path().join("profiles.json"),
        }
    }
    fn cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("remora"));
        c.env("REMORA_API_URL", &self.url)
            .env("REMORA_TOKEN", &self.token)
            .env("REMORA_CONFIG", &self.cfg)
            .env("REMORA_DATA_DIR", "/nonexistent")
            .env("NO_COLOR", "1");
        c
    }
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = assert_cmd::Command::from_std(self.cmd());
        c.args(args).timeout(Duration::from_secs(60));
        if let Some(s) = stdin {
            c.write_stdin(s.to_string());
        }
        tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap()
    }
    async fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args, None).await;
        assert!(
            o.status.success(),
            "remora {args:?} failed: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }
    async fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a).await).unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_command_against_a_real_stack() {
    let mut host = require!(SshHost::start());
    let stack = Stack::new().await;
    let cli = Cli::new(&stack);
    let port = host.port().to_string();
    let key = host.private_key_path().to_str().unwrap().to_string();

    // servers add (key file, then password on stdin), list, get, update, test, status, accept-key
    cli.ok(&[
        "servers",
        "add",
        "k1",
        "--host",
        &host.host(),
        "--port",
        &port,
        "--user",
        host.user(),
        "--key-file",
        &key,
        "--tag",
        "web",
    ])
    .await;
    let o = cli
        .run(
            &[
                "servers",
                "add",
                "p1",
                "--host",
                &host.host(),
                "--port",
                &port,
                "--user",
                host.user(),
                "--password-stdin",
                "--tag",
                "web",
            ],
            Some(&format!("{}\n", host.password())),
        )
        .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let list = cli.json(&["servers", "list"]).await;
    assert_eq!(list["total"], 2);
    assert!(!list.to_string().contains(host.password()));
    assert!(cli.ok(&["servers", "list"]).await.contains("k1"));
    assert_eq!(
        cli.json(&["servers", "get", "p1"]).await["has_password"],
        true
    );
    assert_eq!(
        cli.json(&["servers", "update", "p1", "--max-concurrency", "4"])
            .await["max_concurrency"],
        4
    );
    let o = cli.run(&["servers", "update", "p1"], None).await;
    assert_eq!(o.status.code(), Some(1), "nothing to change is an error");
    let t = cli.json(&["servers", "test", "k1"]).await;
    assert_eq!(
        (t["ok"].as_bool(), t["host_key_status"].as_str()),
        (Some(true), Some("new")),
        "{t}"
    );
    let st = cli.json(&["servers", "status", "--all"]).await;
    assert_eq!(
        (st["total"].as_i64(), st["unreachable"].as_i64()),
        (Some(2), Some(0)),
        "{st}"
    );
    assert!(cli
        .ok(&["servers", "status", "--all"])
        .await
        .contains("reachable"));

    // pem upload, list; a server using it
    let pem = host.add_key(KeyKind::Ecdsa, None, true).unwrap();
    let pem_path = stack.dir.path().join("k.pem");
    std::fs::write(&pem_path, pem).unwrap();
    let up = cli
        .json(&["pem", "upload", pem_path.to_str().unwrap()])
        .await;
    let pem_id = up["id"].as_str().unwrap().to_string();
    assert!(cli.ok(&["pem", "list"]).await.contains(&pem_id));
    cli.ok(&[
        "servers",
        "add",
        "e1",
        "--host",
        &host.host(),
        "--port",
        &port,
        "--user",
        host.user(),
        "--pem",
        &pem_id,
    ])
    .await;
    let o = cli.run(&["pem", "rm", &pem_id], None).await;
    assert_eq!(o.status.code(), Some(1), "a key in use cannot be deleted");
    assert!(text(&o.stderr).contains("e1"), "{}", text(&o.stderr));

    // submit to a tag, follow --stream: both servers' output live, prefixed
    // (plain --follow on a batch shows progress and the grouped output: cli_batches.rs)
    let o = cli
        .run(
            &[
                "submit", "--tag", "web", "--follow", "--stream", "--", "echo", "hi",
            ],
            None,
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("[k1] hi\n") && out.contains("[p1] hi\n"),
        "{out}"
    );
    let jobs = cli.json(&["jobs", "list", "--server", "e1"]).await;
    assert_eq!(jobs["pagination"]["total"], 0);
    let batch_job = cli.json(&["jobs", "list", "--limit", "1"]).await["jobs"][0].clone();
    let batch_id = batch_job["batch_id"].as_str().unwrap().to_string();
    let b = cli.json(&["batches", &batch_id]).await;
    assert_eq!(b["summary"]["completed"], 2);
    assert!(cli.ok(&["batches", &batch_id]).await.contains("completed"));

    // jobs get, logs, rerun, duplicate (--follow exits with the job's code)
    let id = cli
        .ok(&["submit", "-s", "e1", "--", "sh", "-c", "echo x; exit 6"])
        .await
        .trim()
        .to_string();
    stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(cli.json(&["jobs", "get", &id]).await["exit_code"], 6);
    assert!(cli.ok(&["jobs", "get", &id]).await.contains("failed"));
    assert_eq!(cli.ok(&["logs", &id]).await, "x\n");
    let o = cli.run(&["rerun", &id, "--follow"], None).await;
    assert_eq!(o.status.code(), Some(6));
    let o = cli
        .run(
            &[
                "duplicate",
                &id,
                "--server",
                "k1",
                "--priority",
                "9",
                "--follow",
            ],
            None,
        )
        .await;
    assert_eq!(
        (o.status.code(), text(&o.stdout)),
        (Some(6), "x\n".to_string())
    );
    let o = cli.run(&["duplicate", &id, "--priority", "0"], None).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("priority"), "{}", text(&o.stderr));

    // cancel, workers, tokens
    let id = cli
        .ok(&["submit", "-s", "k1", "--", "sleep", "1000"])
        .await
        .trim()
        .to_string();
    stack
        .wait_job(&id, Duration::from_secs(20), |j| j["status"] == "running")
        .await;
    cli.ok(&["cancel", &id]).await;
    assert_eq!(
        stack.wait_final(&id, Duration::from_secs(10)).await["status"],
        "canceled"
    );
    let o = cli.run(&["cancel", &id], None).await;
    assert_eq!(o.status.code(), Some(1), "canceling a finished job fails");
    assert!(cli.ok(&["workers"]).await.contains("true"));
    let tok = cli
        .json(&["tokens", "create", "ci", "--role", "viewer"])
        .await;
    assert!(cli.ok(&["tokens", "list"]).await.contains("ci"));
    cli.ok(&["tokens", "revoke", tok["id"].as_str().unwrap()])
        .await;

    // host key change: test fails and says how to accept; accept-key pins it
    host.regenerate_host_key().unwrap();
    let o = cli.run(&["servers", "test", "k1"], None).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stdout).contains("accept-key"),
        "{}",
        text(&o.stdout)
    );
    cli.ok(&[
        "servers",
        "accept-key",
        "k1",
        "--fingerprint",
        &host.host_key_fingerprint(),
    ])
    .await;
    assert_eq!(cli.json(&["servers", "test", "k1"]).await["ok"], true);
    cli.ok(&["servers", "rm", "p1"]).await;
    assert_eq!(cli.json(&["servers", "list"]).await["total"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_examples_completions_and_login_profiles() {
    let stack = Stack::new().await;
    let cli = Cli::new(&stack);
    for args in [
        vec!["--help"],
        vec!["login", "--help"],
        vec!["servers", "add", "--help"],
        vec!["servers", "list", "--help"],
        vec!["servers", "get", "--help"],
        vec!["servers", "update", "--help"],
        vec!["servers", "rm", "--help"],
        vec!["servers", "test", "--help"],
        vec!["servers", "status", "--help"],
        vec!["servers", "accept-key", "--help"],
        vec!["pem", "upload", "--help"],
        vec!["pem", "list", "--help"],
        vec!["pem", "rm", "--help"],
        vec!["submit", "--help"],
        vec!["jobs", "list", "--help"],
        vec!["jobs", "get", "--help"],
        vec!["logs", "--help"],
        vec!["cancel", "--help"],
        vec!["duplicate", "--help"],
        vec!["rerun", "--help"],
        vec!["batches", "--help"],
        vec!["workers", "--help"],
        vec!["tokens", "list", "--help"],
        vec!["tokens", "create", "--help"],
        vec!["tokens", "revoke", "--help"],
        vec!["up", "--help"],
        vec!["completions", "--help"],
    ] {
        let out = cli.ok(&args).await;
        assert!(
            out.contains("Example"),
            "`remora {}` has no example",
            args.join(" ")
        );
    }
    for sh in ["bash", "zsh", "fish"] {
        assert!(cli.ok(&["completions", sh]).await.contains("remora"));
    }
    // login saves a 0600 profile; later commands use it without REMORA_TOKEN.
    let o = cli
        .run(
            &[
                "login",
                "--name",
                "lab",
                "--url",
                &stack.url,
                "--token",
                &stack.token,
            ],
            None,
        )
        .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cli.cfg).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let cfg = cli.cfg.clone();
    let o = tokio::task::spawn_blocking(move || {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("remora"))
            .env("REMORA_CONFIG", cfg)
            .env("REMORA_DATA_DIR", "/nonexistent")
            .args(["workers", "-o", "json"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    // A bad token at login is refused and nothing is saved.
    let o = cli
        .run(
            &[
                "login", "--name", "bad", "--url", &stack.url, "--token", "nope",
            ],
            None,
        )
        .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(!std::fs::read_to_string(&cli.cfg)
        .unwrap()
        .contains("\"bad\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ctrl_c_during_follow_cancels_and_leaves_nothing() {
    let host = require!(SshHost::start());
    let stack = Stack::new().await;
    stack.add_server("h", &host).await;
    let cli = Cli::new(&stack);
    let mut child = cli
        .cmd()
        .args(["submit", "--server", "h", "--follow", "--", "sleep", "1000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !host
        .user_processes()
        .iter()
        .any(|(_, c)| c.contains("sleep 1000"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the command never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let st = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "remora did not exit after Ctrl-C"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(130), "canceled jobs exit 130");
    assert!(
        host.wait_no_user_processes(Duration::from_secs(3)),
        "left on the host: {:?}",
        host.user_processes()
    );
    let jobs = stack.get("/api/v1/jobs").await;
    assert_eq!(jobs["jobs"][0]["status"], "canceled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rekey_reencrypts_every_secret_under_a_new_key() {
    let host = require!(SshHost::start());
    let dir;
    let old_key;
    {
        // SQLite: the test copies the data dir (database + key file); the
        // store test runs the same re-encryption on PostgreSQL.
        let stack = Stack::start(crate::stack::Db::Sqlite, Default::default()).await;
        stack.add_server("k", &host).await;
        let (st, _) = stack.post("/api/v1/servers", serde_json::json!({ "name": "p", "hostname": host.host(), "port": host.port(), "user": host.user(), "password": host.password() })).await;
        assert_eq!(st, 201);
        old_key = std::fs::read_to_string(stack.dir.path().join("master.key")).unwrap();
        dir = tempfile::tempdir().unwrap();
        // Close the database (WAL checkpointed), then copy the data dir.
        stack.store.close().await;
        for e in std::fs::read_dir(stack.dir.path()).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    let d = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("remora"))
            .args(["rekey", "--data-dir", d.to_str().unwrap()])
            .env_remove("REMORA_MASTER_KEY")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("re-encrypted 2 secret(s)"),
        "{}",
        text(&out.stderr)
    );
    // Issue 14.11: processes still running the old key keep sealing with it: the output says
    // how to keep those values readable, and never prints the old key.
    let old_key_text = old_key.trim().to_string();
    assert!(
        text(&out.stderr).contains("REMORA_MASTER_KEY_PREVIOUS"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains(&old_key_text),
        "the old key is printed"
    );
    assert!(
        !text(&out.stdout).contains(&old_key_text),
        "the old key is printed"
    );
    let new_key = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    assert_ne!(new_key, old_key);
    // The new key opens both secrets; the old one opens none of them.
    let store = remora_store::Store::connect(&remora_store::default_url(dir.path()))
        .await
        .unwrap();
    let new = remora_store::Vault::new(remora_store::vault::parse_key(&new_key).unwrap());
    let old = remora_store::Vault::new(remora_store::vault::parse_key(&old_key).unwrap());
    for name in ["k", "p"] {
        let s = store.get_server_by_name(name).await.unwrap().unwrap();
        let plain = store.open_secrets(&s.id, &new).await.unwrap().unwrap();
        assert!(
            plain.password.as_deref() == Some(host.password())
                || plain.private_key.as_deref() == Some(host.private_key())
        );
        assert!(
            store.open_secrets(&s.id, &old).await.is_err(),
            "old key still opens {name}"
        );
    }
}
