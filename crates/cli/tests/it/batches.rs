//! Batch policies end to end: max_parallel, fail_threshold (stop and abort),
//! rerun of failed hosts, and output grouping, over real sshd and a real worker.

use crate::stack::Stack;
use remora_testkit::require;
use remora_testkit::sshd::SshHost;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// `n` server rows named `{prefix}-{i}` pointing at `host`, all tagged `tag`.
pub(crate) async fn rows(
    stack: &Stack,
    host: &SshHost,
    prefix: &str,
    n: usize,
    tag: &str,
) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let (st, v) = stack
            .post("/api/v1/servers", json!({ "name": format!("{prefix}-{i}"), "hostname": host.host(), "port": host.port(), "user": host.user(), "private_key": host.private_key(), "tags": [tag] }))
            .await;
        assert_eq!(st, 201, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    ids
}

async fn wait_batch(stack: &Stack, id: &str, within: Duration) -> Value {
    let start = Instant::now();
    loop {
        let b = stack.get(&format!("/api/v1/batches/{id}")).await;
        if b["finished"] == true {
            return b;
        }
        assert!(
            start.elapsed() < within,
            "batch {id} not finished within {within:?}: {}",
            b["summary"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn count(b: &Value, status: &str) -> i64 {
    b["summary"][status].as_i64().unwrap()
}

/// A world-writable ticket directory: the first three hosts to take a ticket fail.
pub(crate) fn tickets() -> (tempfile::TempDir, String) {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let p = d.path().display().to_string();
    (d, p)
}

fn ticket_script(dir: &str, rest: &str) -> String {
    format!("i=1; while ! mkdir {dir}/t$i 2>/dev/null; do i=$((i+1)); done; if [ $i -le 3 ]; then exit 1; fi; {rest}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_parallel_5_over_40_hosts_never_runs_more_than_5() {
    let h = require!(SshHost::start());
    let stack = Stack::new().await;
    rows(&stack, &h, "mp", 40, "fleet").await;
    let (st, v) = stack
        .post(
            "/api/v1/jobs",
            json!({ "tag": "fleet", "command": "sleep 0.2", "max_parallel": 5 }),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let id = v["batch_id"].as_str().unwrap().to_string();
    let b = wait_batch(&stack, &id, Duration::from_secs(120)).await;
    assert_eq!(b["status"], "completed", "{}", b["summary"]);
    assert_eq!(b["policy"]["max_parallel"], 5);
    assert_eq!(count(&b, "completed"), 40);
    // Sweep the [started_at, finished_at] intervals: at most 5 overlap.
    let mut ev: Vec<(i64, i32)> = Vec::new();
    let f = remora_store::JobFilter {
        page: 1,
        limit: 100,
        batch_id: Some(id.clone()),
        ..Default::default()
    };
    let (jobs, _) = stack.store.list_jobs(&f).await.unwrap();
    assert_eq!(jobs.len(), 40);
    for j in &jobs {
        ev.push((j.started_at.unwrap(), 1));
        ev.push((j.finished_at.unwrap(), -1));
    }
    ev.sort(); // at equal times the end (-1) sorts first
    let (mut cur, mut peak) = (0, 0);
    for (_, d) in ev {
        cur += d;
        peak = peak.max(cur);
    }
    assert!(peak <= 5, "{peak} hosts ran at once");
    assert!(
        peak >= 2,
        "the batch never ran hosts in parallel (peak {peak})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fail_threshold_3_stop_lets_running_hosts_finish_and_cancels_the_rest() {
    let h = require!(SshHost::start());
    let stack = Stack::new().await;
    rows(&stack, &h, "st", 12, "fleet").await;
    let (_d, dir) = tickets();
    let (st, v) = stack
        .post("/api/v1/jobs", json!({ "tag": "fleet", "command": ticket_script(&dir, "sleep 1"), "max_parallel": 4, "fail_threshold": 3 }))
        .await;
    assert_eq!(st, 201, "{v}");
    let id = v["batch_id"].as_str().unwrap().to_string();
    let b = wait_batch(&stack, &id, Duration::from_secs(60)).await;
    assert_eq!(b["status"], "stopped", "{}", b["summary"]);
    assert_eq!(count(&b, "failed"), 3, "{}", b["summary"]);
    let canceled: Vec<&Value> = b["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["status"] == "canceled")
        .collect();
    assert!(!canceled.is_empty());
    for j in &canceled {
        assert_eq!(j["error_code"], "batch_stopped", "{j}");
        assert!(j["started_at"].is_null(), "a stopped batch started {j}");
    }
    assert_eq!(
        count(&b, "completed") + canceled.len() as i64,
        9,
        "{}",
        b["summary"]
    );

    // Rerun failed: a new batch of exactly the hosts that did not complete.
    let (st, r) = stack
        .post(
            &format!("/api/v1/batches/{id}/rerun"),
            json!({ "only": "failed" }),
        )
        .await;
    assert_eq!(st, 201, "{r}");
    let mut want: Vec<String> = b["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["status"] != "completed")
        .map(|j| j["server_id"].as_str().unwrap().to_string())
        .collect();
    let mut got: Vec<String> = r["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["server_id"].as_str().unwrap().to_string())
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    let nb = r["batch_id"].as_str().unwrap();
    assert_ne!(nb, id);
    let b2 = stack.get(&format!("/api/v1/batches/{nb}")).await;
    assert_eq!(b2["policy"]["source_batch_id"], id.as_str());
    let (st, e) = stack
        .post(
            &format!("/api/v1/batches/{id}/rerun"),
            json!({ "only": "some" }),
        )
        .await;
    assert_eq!(st, 422, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fail_threshold_3_abort_cancels_the_running_hosts_too() {
    let h = require!(SshHost::start());
    let stack = Stack::new().await;
    rows(&stack, &h, "ab", 12, "fleet").await;
    let (_d, dir) = tickets();
    let (st, v) = stack
        .post("/api/v1/jobs", json!({ "tag": "fleet", "command": ticket_script(&dir, "sleep 60"), "max_parallel": 4, "fail_threshold": "25%", "on_fail_threshold": "abort" }))
        .await;
    assert_eq!(st, 201, "{v}");
    let id = v["batch_id"].as_str().unwrap().to_string();
    // 25% of 12 is 3; the sleepers would run 60 s: ending well before proves they were aborted.
    let b = wait_batch(&stack, &id, Duration::from_secs(30)).await;
    assert_eq!(b["policy"]["fail_threshold"], 3);
    assert_eq!(b["status"], "stopped", "{}", b["summary"]);
    assert_eq!(count(&b, "failed"), 3, "{}", b["summary"]);
    assert_eq!(count(&b, "completed"), 0, "{}", b["summary"]);
    assert_eq!(count(&b, "canceled"), 9, "{}", b["summary"]);
    let never_started = b["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["status"] == "canceled" && j["started_at"].is_null())
        .count();
    assert!(never_started < 9, "no running host was aborted");
    for j in b["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["started_at"].is_null())
    {
        assert_eq!(j["error_code"], "batch_stopped", "{j}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn groups_are_byte_exact_and_cancel_stops_a_batch() {
    let h1 = require!(SshHost::start());
    let h2 = require!(SshHost::start_on("127.0.1.2"));
    let stack = Stack::new().await;
    let mut ids = rows(&stack, &h1, "g", 5, "grp").await;
    ids.extend(rows(&stack, &h2, "g2", 1, "grp").await);
    // The server address's last digit: "x1" on five hosts, "x2" (one byte off) on one.
    let cmd = "printf 'x%s' \"$(echo $SSH_CONNECTION | cut -d' ' -f3 | tail -c 2)\"";
    let (st, v) = stack
        .post("/api/v1/jobs", json!({ "server_ids": ids, "command": cmd }))
        .await;
    assert_eq!(st, 201, "{v}");
    let id = v["batch_id"].as_str().unwrap().to_string();
    let b = wait_batch(&stack, &id, Duration::from_secs(60)).await;
    assert_eq!(b["status"], "completed", "{}", b["summary"]);
    let g = stack.get(&format!("/api/v1/batches/{id}/groups")).await;
    let groups = g["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{g}");
    assert_eq!(groups[0]["count"], 5);
    assert_eq!(groups[0]["stdout"], "x1");
    assert_eq!(groups[1]["count"], 1);
    assert_eq!(groups[1]["stdout"], "x2");
    assert_eq!(groups[1]["hosts"][0]["server_name"], "g2-0");
    assert_eq!(g["exit_codes"]["0"], 6);

    // The grid the dashboard polls: filtered, paged, without the full job list.
    let v = stack
        .get(&format!(
            "/api/v1/batches/{id}?jobs=false&search=G2-&limit=5"
        ))
        .await;
    assert_eq!(v["jobs"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["servers_total"], 1, "{v}");
    assert_eq!(v["servers"][0]["server_name"], "g2-0");
    assert_eq!(v["summary"]["completed"], 6, "counts stay whole: {v}");
    assert_eq!(v["exit_codes"]["0"], 6, "{v}");
    let v = stack
        .get(&format!(
            "/api/v1/batches/{id}?jobs=false&status=completed&offset=4&limit=5"
        ))
        .await;
    assert_eq!(v["servers_total"], 6, "{v}");
    assert_eq!(v["servers"].as_array().unwrap().len(), 2, "{v}");
    let v = stack
        .get(&format!("/api/v1/batches/{id}?status=failed"))
        .await;
    assert_eq!(v["servers_total"], 0, "{v}");
    assert_eq!(v["jobs"].as_array().unwrap().len(), 6, "{v}");
    let (st, v) = stack
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/batches/{id}?status=nope"),
            None,
        )
        .await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["error"]["field"], "status", "{v}");

    let r = stack
        .http
        .get(format!(
            "{}/api/v1/batches/{id}/export?format=csv",
            stack.url
        ))
        .bearer_auth(&stack.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csv = r.text().await.unwrap();
    assert_eq!(csv.lines().count(), 7, "{csv}");
    let r = stack
        .http
        .get(format!("{}/api/v1/batches/{id}/export", stack.url))
        .bearer_auth(&stack.token)
        .send()
        .await
        .unwrap();
    let nd = r.text().await.unwrap();
    assert_eq!(
        nd.lines()
            .filter(|l| serde_json::from_str::<Value>(l).unwrap()["stdout"] == "x2")
            .count(),
        1
    );

    // Cancel: a long batch one at a time stops at once.
    let (st, v) = stack
        .post(
            "/api/v1/jobs",
            json!({ "server_ids": ids, "command": "sleep 60", "max_parallel": 1 }),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let id2 = v["batch_id"].as_str().unwrap().to_string();
    let (st, c) = stack
        .post(&format!("/api/v1/batches/{id2}/cancel"), json!(null))
        .await;
    assert_eq!(st, 200, "{c}");
    let b = wait_batch(&stack, &id2, Duration::from_secs(30)).await;
    assert_eq!(b["status"], "canceled");
    assert_eq!(count(&b, "canceled"), 6, "{}", b["summary"]);
    let (st, _) = stack
        .post(&format!("/api/v1/batches/{id2}/cancel"), json!(null))
        .await;
    assert_eq!(st, 409);
}
