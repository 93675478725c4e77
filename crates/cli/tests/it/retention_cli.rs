//! `remora retention show|set|run-now` against a running stack: the policy round-trips, bad
//! values are refused with the field named, and a pass started now purges old finished jobs
//! (and only those), audited; a viewer may read but not run it.

use crate::cli::remora;
use crate::stack::Stack;
use serde_json::{json, Value};

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_show_set_and_run_now() {
    let stack = Stack::new().await;
    let o = remora(&stack, &["retention", "show"], None).await;
    assert!(
        o.status.success() && text(&o).contains("keep forever"),
        "{}",
        text(&o)
    );

    let o = remora(
        &stack,
        &[
            "retention",
            "set",
            "--completed",
            "30",
            "--failed",
            "90",
            "--canceled",
            "7",
            "--output-max-bytes",
            "4096",
        ],
        None,
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("30 days") && text(&o).contains("4096 bytes"),
        "{}",
        text(&o)
    );
    let p = stack.get("/api/v1/settings/retention").await;
    assert_eq!(
        p,
        json!({"jobs_days": {"completed": 30, "failed": 90, "timed_out": null, "canceled": 7}, "output_max_bytes": 4096, "export_before_delete": false})
    );
    // Only the fields given change; `keep` clears one.
    let o = remora(&stack, &["retention", "set", "--failed", "keep"], None).await;
    assert!(o.status.success(), "{}", text(&o));
    let p = stack.get("/api/v1/settings/retention").await;
    assert_eq!(
        (&p["jobs_days"]["failed"], &p["jobs_days"]["completed"]),
        (&Value::Null, &json!(30))
    );
    // Bad values: the API names the field; the CLI refuses what is not a number.
    let o = remora(&stack, &["retention", "set", "--timed-out", "0"], None).await;
    assert!(
        !o.status.success() && text(&o).contains("jobs_days.timed_out"),
        "{}",
        text(&o)
    );
    let o = remora(&stack, &["retention", "set", "--completed", "soon"], None).await;
    assert!(
        !o.status.success() && text(&o).contains("--completed takes a whole number"),
        "{}",
        text(&o)
    );

    // Ten jobs finished in November 2023 (6 completed, 2 failed, 2 canceled) and one now.
    let a = stack.add_server_raw("a").await;
    let b = stack.add_server_raw("b").await;
    stack
        .store
        .bench_fill_jobs(10, &a, &b, false)
        .await
        .unwrap();
    let recent = stack.submit(&a, "true").await;
    stack
        .post(&format!("/api/v1/jobs/{recent}/cancel"), json!(null))
        .await;
    let o = remora(&stack, &["-o", "json", "retention", "run-now"], None).await;
    assert!(o.status.success(), "{}", text(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    // failed is kept forever now: 6 completed + 2 canceled go.
    assert_eq!(r["deleted_jobs"], 8, "{r}");
    let left = stack.get("/api/v1/jobs?limit=100").await;
    let ids: Vec<&str> = left["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "2 failed and the recent one are kept: {left}");
    assert!(ids.contains(&recent.as_str()));
    let o = remora(&stack, &["retention", "run-now"], None).await;
    assert!(text(&o).contains("0 jobs deleted"), "{}", text(&o));

    let audit = stack.get("/api/v1/audit").await.to_string();
    assert!(
        audit.contains("retention.run") && audit.contains("retention.update"),
        "{audit}"
    );

    // A viewer reads the policy but may not run a pass.
    let viewer = remora_api::auth::generate_token();
    stack
        .store
        .insert_token("ro", &remora_api::auth::hash_token(&viewer), "viewer")
        .await
        .unwrap();
    let r = stack
        .http
        .post(format!("{}/api/v1/settings/retention/run", stack.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = stack
        .http
        .get(format!("{}/api/v1/settings/retention", stack.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}
