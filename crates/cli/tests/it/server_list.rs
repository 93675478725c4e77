//! `GET /servers` with `q`, `tag`, `status`, `offset` and `limit`: filtered and paged by the API,
//! and without them the whole list as before.

use crate::stack::Stack;
use serde_json::json;

fn names(v: &serde_json::Value) -> Vec<String> {
    v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_list_filters_and_pages_on_the_server() {
    let stack = Stack::new().await;
    for (name, tags, active) in [
        ("sl-web-1", vec!["sl-web"], true),
        ("sl-web-2", vec!["sl-web"], false),
        ("sl-db-1", vec!["sl-db", "sl-web-x"], true),
    ] {
        let (st, v) = stack
            .post(
                "/api/v1/servers",
                json!({ "name": name, "hostname": "127.0.0.1", "port": 1, "user": "u", "password": "x", "tags": tags, "is_active": active }),
            )
            .await;
        assert_eq!(st, 201, "{v}");
    }
    // No parameter: every server, as before.
    let all = stack.get("/api/v1/servers").await;
    let n = all["servers"].as_array().unwrap().len();
    assert_eq!(all["total"], n);
    assert_eq!(all["all"], n);
    assert!(all["tags"].as_array().unwrap().contains(&json!("sl-web-x")));

    let v = stack.get("/api/v1/servers?tag=sl-web").await;
    assert_eq!(names(&v), vec!["sl-web-1", "sl-web-2"], "{v}");
    assert_eq!(
        (v["total"].as_u64(), v["active"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(v["all"], n);
    let v = stack.get("/api/v1/servers?q=SL-&offset=1&limit=1").await;
    assert_eq!(names(&v), vec!["sl-web-1"], "by name, second of three: {v}");
    assert_eq!(v["total"], 3);
    let v = stack.get("/api/v1/servers?q=sl-&status=inactive").await;
    assert_eq!(names(&v), vec!["sl-web-2"], "{v}");
    let v = stack.get("/api/v1/servers?q=sl-web-x").await;
    assert_eq!(names(&v), vec!["sl-db-1"], "tags are searched: {v}");
    for bad in ["status=gone", "limit=0", "limit=1001"] {
        let (st, e) = stack
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/servers?{bad}"),
                None,
            )
            .await;
        assert_eq!(st, 422, "{bad}: {e}");
    }
}
