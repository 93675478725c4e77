//! The OpenAPI document: complete, served, enforced (auth on every route but
//! the public ones), plus rate limiting, metrics and readiness.

use crate::stack::{Db, Stack};
use serde_json::Value;
use std::time::Duration;

const PUBLIC: [&str; 3] = ["/health", "/ready", "/metrics"];

fn spec() -> Value {
    serde_json::to_value(remora_api::openapi()).unwrap()
}

/// Every route the API registers is in the spec by construction (utoipa-axum
/// `routes!`); this guards the construction: no handler may be mounted with
/// a plain `.route(` that bypasses the spec.
#[test]
fn no_route_bypasses_the_spec() {
    let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/src")];
    let mut files = vec![];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    assert!(
        files.iter().any(|p| p.ends_with("import/mod.rs")),
        "{files:?}"
    );
    for p in files {
        let text = std::fs::read_to_string(&p).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            assert!(
                !code.contains(".route(\""),
                "{}:{} mounts a route outside the OpenAPI router: {line}",
                p.display(),
                i + 1
            );
        }
    }
}

#[test]
fn spec_lists_every_route_of_the_design() {
    let s = spec();
    assert!(
        s["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        s["openapi"]
    );
    let paths = s["paths"].as_object().unwrap();
    let want = [
        ("get", "/health"),
        ("get", "/ready"),
        ("get", "/metrics"),
        ("post", "/api/v1/servers"),
        ("get", "/api/v1/servers"),
        ("get", "/api/v1/servers/{id}"),
        ("put", "/api/v1/servers/{id}"),
        ("delete", "/api/v1/servers/{id}"),
        ("post", "/api/v1/servers/{id}/test"),
        ("get", "/api/v1/servers/{id}/status"),
        ("post", "/api/v1/servers/{id}/status"),
        ("get", "/api/v1/servers/status"),
        ("post", "/api/v1/servers/status"),
        ("post", "/api/v1/servers/{id}/host-key/accept"),
        ("post", "/api/v1/pem-files"),
        ("get", "/api/v1/pem-files"),
        ("delete", "/api/v1/pem-files/{id}"),
        ("post", "/api/v1/jobs"),
        ("post", "/api/v1/jobs/script"),
        ("get", "/api/v1/jobs"),
        ("get", "/api/v1/jobs/{id}"),
        ("post", "/api/v1/jobs/{id}/cancel"),
        ("post", "/api/v1/jobs/{id}/duplicate"),
        ("post", "/api/v1/jobs/{id}/rerun"),
        ("get", "/api/v1/jobs/{id}/logs"),
        ("get", "/api/v1/jobs/{id}/stdout"),
        ("get", "/api/v1/jobs/{id}/stderr"),
        ("get", "/api/v1/jobs/{id}/stream"),
        ("get", "/api/v1/batches/{id}"),
        ("get", "/api/v1/workers"),
        ("post", "/api/v1/workers/{id}/drain"),
        ("get", "/api/v1/system/info"),
        ("get", "/api/v1/system/enhanced"),
        ("get", "/api/v1/jobs/export"),
        ("get", "/api/v1/events"),
        ("get", "/api/v1/tokens"),
        ("post", "/api/v1/tokens"),
        ("delete", "/api/v1/tokens/{id}"),
        ("get", "/api/v1/audit"),
    ];
    for (m, p) in want {
        assert!(
            paths.get(p).and_then(|o| o.get(m)).is_some(),
            "{m} {p} missing from the spec"
        );
    }
    assert!(s["components"]["schemas"]["Job"].is_object());
    assert!(s["components"]["securitySchemes"]["bearer"].is_object());
}

/// Generated from the spec: every operation but the public ones answers 401 without a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_but_the_public_ones_needs_a_token() {
    let stack = Stack::new().await;
    let s = spec();
    let mut checked = 0;
    for (path, ops) in s["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let url = format!("{}{}", stack.url, path.replace("{id}", "x"));
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = stack.http.request(m, &url).send().await.unwrap();
            if PUBLIC.contains(&path.as_str()) {
                assert_ne!(r.status(), 401, "{method} {path} is public");
            } else {
                assert_eq!(r.status(), 401, "{method} {path} answered without a token");
                let v: Value = r.json().await.unwrap();
                assert_eq!(v["error"]["code"], "unauthorized");
            }
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} operations checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_metrics_ready_and_spec_are_served() {
    let stack = Stack::new().await;
    let r = reqwest::get(format!("{}/api/openapi.json", stack.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let served: Value = r.json().await.unwrap();
    assert_eq!(
        served["paths"].as_object().unwrap().len(),
        spec()["paths"].as_object().unwrap().len()
    );
    let r = reqwest::get(format!("{}/api/docs/", stack.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("swagger"), "Swagger UI page");
    assert!(
        !html.contains("cdn.") && !html.contains("unpkg"),
        "assets are bundled, not fetched from a CDN"
    );
    let r = reqwest::get(format!("{}/api/docs/swagger-ui-bundle.js", stack.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "bundled Swagger UI asset");
    // A request, then metrics reflect it by route template.
    stack.get("/api/v1/jobs").await;
    let m = reqwest::get(format!("{}/metrics", stack.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains(
            "remora_http_requests_total{method=\"GET\",route=\"/api/v1/jobs\",status=\"200\"}"
        ),
        "{m}"
    );
    assert!(m.contains("remora_jobs{status=\"queued\"} 0"), "{m}");
    assert!(m.contains("remora_queue_depth 0"), "{m}");
    let r = reqwest::get(format!("{}/ready", stack.url)).await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after() {
    let cfg = remora_api::ApiConfig {
        rate_limit: 5,
        ..Default::default()
    };
    let stack = Stack::start_with(Db::from_env(), Default::default(), cfg).await;
    let mut limited = None;
    // Burst is 10: within 40 immediate requests one must be refused.
    for _ in 0..40 {
        let r = stack
            .http
            .get(format!("{}/api/v1/workers", stack.url))
            .bearer_auth(&stack.token)
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("no 429 within 40 requests at 5/s");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=5).contains(&retry));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limited");
    // Other tokens are not affected... and /health never is.
    let h = reqwest::get(format!("{}/health", stack.url)).await.unwrap();
    assert_eq!(h.status(), 200);
    let _ = Duration::ZERO;
}
