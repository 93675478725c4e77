//! Jump hosts through the whole stack: targets in network namespaces
//! reachable only through a bastion run jobs through one and two hops,
//! cancel kills the remote tree through the chain, a changed bastion key
//! fails the job naming the hop, and the API refuses unknown ids, loops and
//! chains deeper than the limit.

use crate::stack::Stack;
use remora_testkit::netns::NetLab;
use remora_testkit::require;
use remora_testkit::sshd::{SshHost, SshHostOptions};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn add(stack: &Stack, name: &str, host: &SshHost, jump: Option<&str>) -> (u16, Value) {
    let mut body = json!({ "name": name, "hostname": host.host(), "port": host.port(),
        "user": host.user(), "private_key": host.private_key() });
    if let Some(j) = jump {
        body["jump_server_id"] = json!(j);
    }
    stack.post("/api/v1/servers", body).await
}

async fn add_ok(stack: &Stack, name: &str, host: &SshHost, jump: Option<&str>) -> String {
    let (st, v) = add(stack, name, host, jump).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["jump_server_id"].is_null(), jump.is_none(), "{v}");
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_through_one_and_two_hops_cancel_and_changed_bastion_key() {
    let mut lab = require!(NetLab::new());
    let a = lab.bastion().unwrap();
    let b = lab.add_node_behind(&a).unwrap();
    let c = lab.add_node_behind(&b).unwrap();
    let mut ha = SshHostOptions::new().in_netns(&a).start().unwrap();
    let hb = SshHostOptions::new().in_netns(&b).start().unwrap();
    let hc = SshHostOptions::new().in_netns(&c).start().unwrap();
    let stack = Stack::new().await;
    let sa = add_ok(&stack, "bastion", &ha, None).await;
    // By name or by id.
    let sb = add_ok(&stack, "inner", &hb, Some("bastion")).await;
    let sb_row = stack.get(&format!("/api/v1/servers/{sb}")).await;
    assert_eq!(sb_row["jump_server_id"], sa.as_str());
    let sc = add_ok(&stack, "deep", &hc, Some(&sb)).await;

    for (sid, host) in [(&sb, &hb), (&sc, &hc)] {
        let id = stack.submit(sid, "id -un").await;
        let job = stack.wait_final(&id, Duration::from_secs(30)).await;
        assert_eq!(job["status"], "completed", "{job}");
        let out = stack.get(&format!("/api/v1/jobs/{id}/stdout")).await;
        assert!(out.to_string().contains(host.user()), "{out}");
    }

    // Cancel through two hops kills the remote tree.
    let id = stack
        .submit(&sc, "bash -c 'sleep 1000 & sleep 1000 & wait'")
        .await;
    let start = Instant::now();
    while !hc
        .user_processes()
        .iter()
        .any(|(_, c)| c.contains("sleep 1000"))
    {
        assert!(start.elapsed() < Duration::from_secs(20), "never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (st, v) = stack
        .post(&format!("/api/v1/jobs/{id}/cancel"), json!(null))
        .await;
    assert_eq!(st, 202, "{v}");
    let job = stack.wait_final(&id, Duration::from_secs(15)).await;
    assert_eq!(job["status"], "canceled", "{job}");
    assert!(
        hc.wait_no_user_processes(Duration::from_secs(5)),
        "left behind the bastion: {:?}",
        hc.user_processes()
    );

    // The API refuses unknown jump servers, loops and chains past the limit.
    let (st, v) = add(&stack, "x", &hb, Some("no-such-server")).await;
    assert_eq!(st, 422, "{v}");
    assert!(v.to_string().contains("jump_server_id"), "{v}");
    let (st, v) = stack
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/servers/{sa}"),
            Some(json!({ "jump_server_id": sc })),
        )
        .await;
    assert_eq!(st, 422, "{v}");
    assert!(v.to_string().contains("loops"), "{v}");
    let (st, v) = stack
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/servers/{sa}"),
            Some(json!({ "jump_server_id": sa })),
        )
        .await;
    assert_eq!(st, 422, "{v}");
    // deep (3rd in its chain) → hop 3, then a 4th is past the default 3.
    let d3 = add_ok(&stack, "d3", &hc, Some(&sc)).await;
    let (st, v) = add(&stack, "d4", &hc, Some(&d3)).await;
    assert_eq!(st, 422, "{v}");
    assert!(v.to_string().contains("REMORA_MAX_JUMP_DEPTH"), "{v}");
    // Clearing a jump host.
    let (st, v) = stack
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/servers/{d3}"),
            Some(json!({ "jump_server_id": "" })),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert!(v["jump_server_id"].is_null(), "{v}");

    // A changed bastion key fails the job, naming the bastion. Its key was
    // pinned on first use by the jobs above. sshd restarts on a new key; the
    // worker's open bastion connection (its session process, running as the
    // bastion's user) is dropped below.
    let pinned = stack.get(&format!("/api/v1/servers/{sa}")).await;
    assert_eq!(
        pinned["host_key_fingerprint"].as_str(),
        Some(ha.host_key_fingerprint().as_str()),
        "{pinned}"
    );
    ha.regenerate_host_key().unwrap();
    // Drop the worker's open bastion connection (its TCP socket in the
    // bastion's namespace) so that the next job connects anew.
    let killed = a
        .command("ss")
        .args(["-K", "state", "established", "sport", "= :22"])
        .output()
        .unwrap();
    assert!(killed.status.success(), "{killed:?}");
    let inner_before = hb.connection_count();
    let id = stack.submit(&sb, "true").await;
    let job = stack.wait_final(&id, Duration::from_secs(60)).await;
    assert_eq!(job["error_code"], "jump_failed", "{job}");
    let msg = job["error"].as_str().unwrap_or_default().to_string();
    assert!(msg.contains(&ha.host()), "{msg}");
    assert!(msg.contains("host key mismatch"), "{msg}");
    assert_eq!(hb.connection_count(), inner_before, "reached B anyway");
}
