//! The database off the hot path, end to end: a 200-host batch through the store's group-commit
//! writer completes with every host's output stored bytes-exact, and its writes shared transactions.

use crate::batches::rows;
use crate::stack::{Db, Stack};
use remora_testkit::require;
use remora_testkit::sshd::SshHost;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_200_host_batch_completes_with_every_hosts_output() {
    let mut hosts = Vec::new();
    for i in 1..=4 {
        hosts.push(require!(SshHost::start_on(&format!("127.0.1.{i}"))));
    }
    let stack = Stack::start(
        Db::from_env(),
        remora_worker::WorkerConfig {
            concurrency: 64,
            ..Default::default()
        },
    )
    .await;
    for (i, h) in hosts.iter().enumerate() {
        rows(&stack, h, &format!("gc{i}"), 50, "fleet200").await;
    }
    let before = stack.store.writer_stats();
    // Each host prints the last digit of its address, 300 numbered lines (several output
    // flushes) and a line on stderr.
    let cmd = "printf 'x%s\\n' \"$(echo $SSH_CONNECTION | cut -d' ' -f3 | tail -c 2)\"; seq 1 300; echo done >&2";
    let (st, v) = stack
        .post("/api/v1/jobs", json!({ "tag": "fleet200", "command": cmd }))
        .await;
    assert_eq!(st, 201, "{v}");
    let id = v["batch_id"].as_str().unwrap().to_string();
    assert_eq!(v["jobs"].as_array().unwrap().len(), 200);
    let t0 = Instant::now();
    let b = loop {
        let b = stack.get(&format!("/api/v1/batches/{id}")).await;
        if b["finished"] == true {
            break b;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(240),
            "batch not finished: {}",
            b["summary"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(b["status"], "completed", "{}", b["summary"]);
    assert_eq!(b["summary"]["completed"], 200, "{}", b["summary"]);

    let seq: String = (1..=300).map(|n| format!("{n}\n")).collect();
    let g = stack.get(&format!("/api/v1/batches/{id}/groups")).await;
    let groups = g["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 4, "one group per address: {g}");
    for grp in groups {
        assert_eq!(grp["count"], 50, "{grp}");
        let out = grp["stdout"].as_str().unwrap();
        let (first, rest) = out.split_once('\n').unwrap();
        assert!(["x1", "x2", "x3", "x4"].contains(&first), "{first:?}");
        assert_eq!(rest, seq, "stdout bytes-exact");
        assert_eq!(grp["stderr"], "done\n");
    }
    assert_eq!(g["exit_codes"]["0"], 200);
    let f = remora_store::JobFilter {
        page: 1,
        limit: 200,
        batch_id: Some(id.clone()),
        ..Default::default()
    };
    let (jobs, _) = stack.store.list_jobs(&f).await.unwrap();
    assert_eq!(jobs.len(), 200);
    for j in &jobs {
        assert_eq!(j.stdout_bytes, 3 + seq.len() as i64, "{j:?}");
        assert_eq!(j.stderr_bytes, 5, "{j:?}");
    }
    // 200 claims + 200 finishes + the appends: fewer transactions than writes.
    let after = stack.store.writer_stats();
    let (rounds, ops) = (after.rounds - before.rounds, after.ops - before.ops);
    eprintln!(
        "200 hosts in {:?}: {ops} writes in {rounds} transactions",
        t0.elapsed()
    );
    assert!(ops >= 400, "{after:?}");
    assert!(rounds < ops, "{rounds} transactions for {ops} writes");
}
