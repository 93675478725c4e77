//! Times `POST /api/v1/servers/import` of a generated 1,000-host ssh_config and Ansible INI and
//! YAML inventory (first import, then the unchanged re-import) through `app(state)` on SQLite,
//! or on PostgreSQL when `REMORA_BENCH_PG_URL` names a database. Run by bench/import/run.sh.

use axum::body::Body;
use axum::http::{header, Method, Request};
use std::time::Instant;
use tower::ServiceExt;

fn ssh_config(n: usize) -> String {
    let mut s = String::from("Host bastion\n    HostName 192.0.2.1\n    User jump\n\n");
    for i in 0..n - 1 {
        s.push_str(&format!(
            "Host node{i:04}\n    HostName 10.{}.{}.{}\n    Port 22\n    ProxyJump bastion\n    IdentityFile ~/.ssh/fleet\n\n",
            i / 65536,
            (i / 256) % 256,
            i % 256
        ));
    }
    s.push_str("Host *\n    User deploy\n");
    s
}

fn ansible_ini(n: usize) -> String {
    let mut s = String::from("[web]\n");
    for i in 0..n {
        if i == n / 2 {
            s.push_str("[db]\n");
        }
        s.push_str(&format!(
            "host{i:04} ansible_host=10.{}.{}.{} ansible_port=22\n",
            100 + i / 65536,
            (i / 256) % 256,
            i % 256
        ));
    }
    s.push_str("[prod:children]\nweb\ndb\n[prod:vars]\nansible_user=ops\n");
    s
}

fn ansible_yaml(n: usize) -> String {
    let mut s =
        String::from("all:\n  vars:\n    ansible_user: ops\n  children:\n    app:\n      hosts:\n");
    for i in 0..n {
        s.push_str(&format!(
            "        app{i:04}:\n          ansible_host: 10.200.{}.{}\n",
            i / 256,
            i % 256
        ));
    }
    s
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("REMORA_BENCH_PG_URL")
        .unwrap_or_else(|_| remora_store::default_url(dir.path()));
    let store = remora_store::Store::connect(&url).await.unwrap();
    let token = "rmr_import_bench_token";
    store
        .insert_token("bench", &remora_api::auth::hash_token(token), "admin")
        .await
        .unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    let queue = remora_netqueue::Client::connect_lazy(&addr, None)
        .await
        .unwrap();
    let state = remora_api::AppState::new(
        store,
        remora_store::Vault::new([3u8; 32]),
        queue,
        remora_api::ApiConfig::default(),
    );
    let app = remora_api::app(state);
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let db = if url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    for (format, content) in [
        ("ssh_config", ssh_config(n)),
        ("ansible", ansible_ini(n)),
        ("ansible", ansible_yaml(n)),
    ] {
        for pass in ["first import", "re-import (unchanged)"] {
            let body = serde_json::json!({ "format": format, "content": content,
                "defaults": { "password": "bench", "tags": ["bench"] } });
            let req = Request::builder()
                .method(Method::POST)
                .uri("/api/v1/servers/import")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap();
            let t = Instant::now();
            let resp = app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
                .await
                .unwrap();
            let took = t.elapsed();
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert!(status.is_success(), "{status}: {}", v["errors"]);
            println!(
                "{db}\t{format}\t{n} hosts\t{} bytes\t{pass}\t{:.0} ms\tcreated {} updated {} unchanged {}",
                content.len(),
                took.as_secs_f64() * 1000.0,
                v["created"],
                v["updated"],
                v["unchanged"]
            );
        }
    }
}
