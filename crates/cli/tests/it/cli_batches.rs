//! The batch side of the CLI: `submit --tag … --max-parallel --fail-threshold --on-fail
//! --follow` (progress, then output grouped across hosts), `batches ID --groups --failed`,
//! `batches cancel`, `batches rerun --only failed`, and their exit codes.

use crate::batches::{rows, tickets};
use crate::cli::remora;
use crate::stack::Stack;
use remora_testkit::require;
use remora_testkit::sshd::SshHost;
use serde_json::Value;
use std::time::{Duration, Instant};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const RULE: &str = "----------------";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submit_follow_groups_a_stopped_batch_and_rerun_failed_completes_it() {
    let h = require!(SshHost::start());
    let stack = Stack::new().await;
    rows(&stack, &h, "cb", 6, "fleet").await;
    let (_d, dir) = tickets();
    // One host at a time: ticket 1 prints ok, tickets 2 and 3 fail (the threshold of 2
    // stops the batch), every later ticket prints ok.
    let script = format!(
        "i=1; while ! mkdir {dir}/t$i 2>/dev/null; do i=$((i+1)); done; \
         if [ $i -eq 2 ] || [ $i -eq 3 ]; then echo bad; echo oops >&2; exit 1; fi; echo ok"
    );
    let o = remora(
        &stack,
        &[
            "submit",
            "--tag",
            "fleet",
            "--max-parallel",
            "1",
            "--fail-threshold",
            "2",
            "--on-fail",
            "stop",
            "--follow",
            "--",
            "sh",
            "-c",
            &script,
        ],
        None,
    )
    .await;
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(
        o.status.code(),
        Some(1),
        "a stopped batch exits 1\n{out}\n{err}"
    );
    // Not a terminal: plain progress lines on stderr, the last one with every host final.
    assert!(
        err.contains("6/6 completed 1 · failed 2 · canceled 3"),
        "{err}"
    );
    assert!(err.contains("stopped"), "{err}");
    // dshbak -c style: each distinct output once, under its hosts.
    assert!(
        out.contains(&format!(
            "(2 hosts, exit 1, failed)\n{RULE}\nbad\n[stderr]\noops\n"
        )),
        "{out}"
    );
    assert!(out.contains("(3 hosts, no exit code, canceled)\n"), "{out}");
    assert!(
        out.contains("(1 host, exit 0)\n----------------\nok\n"),
        "{out}"
    );
    assert_eq!(out.matches(RULE).count(), 6, "three groups: {out}");

    let batch = stack.get("/api/v1/jobs?limit=1").await["jobs"][0]["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    // batches ID --groups -o json: the groups as the API sent them; the completed host's name.
    let o = remora(&stack, &["batches", &batch, "--groups", "-o", "json"], None).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let g: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(g["groups"].as_array().unwrap().len(), 3, "{g}");
    let ok_host = g["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["exit_code"] == 0)
        .unwrap()["hosts"][0]["server_name"]
        .as_str()
        .unwrap()
        .to_string();
    // --failed: the grid without the host that completed.
    let o = remora(&stack, &["batches", &batch, "--failed"], None).await;
    assert_eq!(o.status.code(), Some(1));
    let grid = text(&o.stdout);
    assert!(!grid.contains(&format!("{ok_host} ")), "{grid}");
    assert_eq!(grid.matches("cb-").count(), 5, "{grid}");
    let o = remora(&stack, &["batches", &batch, "--groups", "--failed"], None).await;
    let groups = text(&o.stdout);
    assert!(
        !groups.contains("exit 0") && groups.contains("exit 1"),
        "{groups}"
    );

    // Rerun of the five hosts that did not complete: every later ticket prints ok.
    let o = remora(
        &stack,
        &["batches", "rerun", &batch, "--only", "failed", "--follow"],
        None,
    )
    .await;
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(
        out.contains("(5 hosts, exit 0)\n----------------\nok\n"),
        "{out}"
    );
    assert!(
        !out.contains(&ok_host),
        "the completed host is not rerun: {out}"
    );
    // Every host of the rerun completed: nothing to rerun, a refused request.
    let rerun = stack.get("/api/v1/jobs?limit=1").await["jobs"][0]["batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(rerun, batch);
    let o = remora(&stack, &["batches", &rerun], None).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = remora(
        &stack,
        &["batches", "rerun", &rerun, "--only", "failed"],
        None,
    )
    .await;
    assert_eq!(o.status.code(), Some(3), "a refused request exits 3");
    assert!(
        text(&o.stderr).contains("nothing_to_rerun"),
        "{}",
        text(&o.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_cancel_and_the_request_failure_exit_code() {
    let h = require!(SshHost::start());
    let stack = Stack::new().await;
    rows(&stack, &h, "cc", 4, "slow").await;
    let o = remora(
        &stack,
        &[
            "submit",
            "--tag",
            "slow",
            "--max-parallel",
            "25%",
            "-o",
            "json",
            "--",
            "sleep",
            "30",
        ],
        None,
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let batch = v["batch_id"].as_str().unwrap().to_string();
    // "25%" of 4 hosts: one at a time.
    let b = stack.get(&format!("/api/v1/batches/{batch}")).await;
    assert_eq!(b["policy"]["max_parallel"], 1, "{b}");
    // Wait for the first host to start, so cancel stops a running one too.
    let start = Instant::now();
    while stack.get(&format!("/api/v1/batches/{batch}")).await["summary"]["running"] != 1 {
        assert!(start.elapsed() < Duration::from_secs(30), "no host started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let o = remora(&stack, &["batches", "cancel", &batch], None).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let start = Instant::now();
    loop {
        let b = stack.get(&format!("/api/v1/batches/{batch}")).await;
        if b["finished"] == true {
            assert_eq!(b["status"], "canceled", "{b}");
            assert_eq!(b["summary"]["canceled"], 4, "{b}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "cancel did not end the batch: {b}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let o = remora(&stack, &["batches", &batch], None).await;
    assert_eq!(
        o.status.code(),
        Some(1),
        "a canceled batch did not all complete"
    );
    let o = remora(&stack, &["batches", "cancel", &batch], None).await;
    assert_eq!(
        o.status.code(),
        Some(3),
        "canceling twice is a refused request"
    );
    assert!(
        text(&o.stderr).contains("not_running"),
        "{}",
        text(&o.stderr)
    );
    // A policy on one server: the API refuses it (422), exit 3.
    let o = remora(
        &stack,
        &[
            "submit",
            "--server",
            "cc-0",
            "--max-parallel",
            "2",
            "--",
            "true",
        ],
        None,
    )
    .await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("max_parallel"),
        "{}",
        text(&o.stderr)
    );
    // A bad share: the API's validation message.
    let o = remora(
        &stack,
        &[
            "submit",
            "--tag",
            "slow",
            "--fail-threshold",
            "lots",
            "--",
            "true",
        ],
        None,
    )
    .await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("fail_threshold"),
        "{}",
        text(&o.stderr)
    );
    // Usage errors are clap's (exit 2) before any request.
    let o = remora(&stack, &["batches"], None).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let o = remora(
        &stack,
        &[
            "submit",
            "--tag",
            "slow",
            "--on-fail",
            "maybe",
            "--",
            "true",
        ],
        None,
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}

/// `--follow --stream` on more hosts than the API lets one token stream at once
/// (`REMORA_SSE_MAX_PER_TOKEN`, here 1): the refused streams wait for a slot and
/// every host's output still arrives, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follow_stream_waits_for_a_stream_slot_and_shows_every_host() {
    let h = require!(SshHost::start());
    let cfg = remora_api::ApiConfig {
        worker_down_after: Duration::from_secs(5),
        sse_max_per_token: 1,
        ..Default::default()
    };
    let stack = Stack::start_with(
        crate::stack::Db::from_env(),
        remora_worker::WorkerConfig::default(),
        cfg,
    )
    .await;
    rows(&stack, &h, "cs", 3, "capped").await;
    let o = remora(
        &stack,
        &[
            "submit", "--tag", "capped", "--follow", "--stream", "--", "echo", "hi",
        ],
        None,
    )
    .await;
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    for i in 0..3 {
        assert_eq!(out.matches(&format!("[cs-{i}] hi\n")).count(), 1, "{out}");
    }
}
