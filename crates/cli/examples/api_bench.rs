//! API benchmark (bench/api/run.sh): `GET /api/v1/jobs?limit=50` with and
//! without filters over N jobs (default 1,000,000) on SQLite and, when
//! `REMORA_BENCH_PG_URL` is set, PostgreSQL; and SSE line latency (a line
//! printed on the host → the SSE client), through the whole stack with the
//! in-process demo SSH host. Prints a Markdown table.
//!
//! Usage: cargo run --release -p remora-cli --example api_bench -- [JOBS] [REQUESTS]

use futures::StreamExt;
use remora_store::Store;
use serde_json::json;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

struct Stack {
    url: String,
    token: String,
    http: reqwest::Client,
    sd: CancellationToken,
    _dir: tempfile::TempDir,
}

async fn stack(db_url: Option<String>, with_worker: bool) -> (Stack, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url.unwrap_or_else(|| remora_store::default_url(dir.path()));
    let store = Store::connect(&url).await.unwrap();
    let vault = remora_store::Vault::load(None, dir.path()).unwrap();
    let sd = CancellationToken::new();
    let ql = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let qaddr = ql.local_addr().unwrap().to_string();
    tokio::spawn(remora_netqueue::run(
        ql,
        remora_netqueue::ServerConfig {
            fsync: remora_netqueue::FsyncPolicy::Never,
            ..Default::default()
        },
        sd.clone(),
    ));
    let queue = remora_netqueue::Client::connect(&qaddr, None)
        .await
        .unwrap();
    let token = remora_api::auth::generate_token();
    store
        .insert_token("bench", &remora_api::auth::hash_token(&token), "admin")
        .await
        .unwrap();
    let al = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}", al.local_addr().unwrap());
    let cfg = remora_api::ApiConfig {
        rate_limit: 0,
        ..Default::default()
    };
    tokio::spawn(remora_api::run(
        al,
        remora_api::AppState::new(store.clone(), vault.clone(), queue.clone(), cfg),
        sd.clone(),
    ));
    if with_worker {
        tokio::spawn(remora_worker::run(
            store.clone(),
            vault,
            queue,
            Default::default(),
            sd.clone(),
        ));
    }
    (
        Stack {
            url: api_url,
            token,
            http: reqwest::Client::new(),
            sd,
            _dir: dir,
        },
        store,
    )
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn list_latency(s: &Stack, query: &str, n: usize) -> (f64, f64, f64) {
    let mut lat = Vec::with_capacity(n);
    for i in 0..n + 20 {
        let t = Instant::now();
        let r = s
            .http
            .get(format!("{}/api/v1/jobs?{query}", s.url))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{query}");
        let _ = r.bytes().await.unwrap();
        if i >= 20 {
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    (pct(&mut lat, 0.5), pct(&mut lat, 0.95), pct(&mut lat, 0.99))
}

async fn db_bench(label: &str, db_url: Option<String>, jobs: i64, requests: usize) {
    let (s, store) = stack(db_url, false).await;
    let srv = store
        .insert_server(&remora_store::NewServer {
            name: "bench".into(),
            hostname: "127.0.0.1".into(),
            port: 22,
            user: "u".into(),
            password_enc: Some(vec![1]),
            is_active: true,
            max_concurrency: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let other = store
        .insert_server(&remora_store::NewServer {
            name: "other".into(),
            hostname: "127.0.0.1".into(),
            port: 22,
            user: "u".into(),
            password_enc: Some(vec![1]),
            is_active: true,
            max_concurrency: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let t = Instant::now();
    store
        .bench_fill_jobs(
            jobs,
            &srv.id,
            &other.id,
            std::env::var("REMORA_BENCH_SQLITE_ANALYZE").as_deref() == Ok("1"),
        )
        .await
        .unwrap();
    eprintln!(
        "{label}: inserted {jobs} jobs in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    for (name, q) in [
        ("no filter", "limit=50".to_string()),
        ("page 100", "limit=50&page=100".to_string()),
        ("status=failed", "limit=50&status=failed".to_string()),
        ("server_id", format!("limit=50&server_id={}", other.id)),
        (
            "sort_by=started_at",
            "limit=50&sort_by=started_at".to_string(),
        ),
        (
            "sort_by=finished_at, asc",
            "limit=50&sort_by=finished_at&sort_order=asc".to_string(),
        ),
        ("sort_by=priority", "limit=50&sort_by=priority".to_string()),
        ("sort_by=status", "limit=50&sort_by=status".to_string()),
        (
            "status=failed, sort_by=started_at",
            "limit=50&status=failed&sort_by=started_at".to_string(),
        ),
        // 10% of the jobs say "deploy app N"; "app 777770" is in one or two.
        (
            "search, common string",
            "limit=50&search=deploy".to_string(),
        ),
        (
            "search, rare string",
            "limit=50&search=app%20777770".to_string(),
        ),
        ("search, no match", "limit=50&search=zzzz".to_string()),
        (
            "search + status",
            "limit=50&search=deploy&status=failed".to_string(),
        ),
        ("search, 2 characters", "limit=50&search=pp".to_string()),
        // Worst case: two common filters that never meet; every candidate is read.
        (
            "search + status, disjoint",
            "limit=50&search=deploy&status=completed".to_string(),
        ),
    ] {
        let n = if name.ends_with("disjoint") {
            requests.min(30)
        } else {
            requests
        };
        let (p50, p95, p99) = list_latency(&s, &q, n).await;
        println!("| {label} | {name} | {p50:.2} | {p95:.2} | {p99:.2} |");
    }
    s.sd.cancel();
}

async fn sse_bench(lines: usize) {
    let (s, store) = stack(None, true).await;
    let sd = CancellationToken::new();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let demo = remora_ssh::demo::DemoHost::start(l, dir.path(), sd.clone())
        .await
        .unwrap();
    let r = s.http.post(format!("{}/api/v1/servers", s.url)).bearer_auth(&s.token)
        .json(&json!({ "name": "demo", "hostname": "127.0.0.1", "port": demo.addr.port(), "user": "bench", "private_key": demo.client_key }))
        .send().await.unwrap();
    assert_eq!(r.status(), 201);
    let cmd = format!("for i in $(seq 1 {lines}); do date +%s%N; sleep 0.05; done");
    let job: serde_json::Value = s
        .http
        .post(format!("{}/api/v1/jobs", s.url))
        .bearer_auth(&s.token)
        .json(&json!({ "server_id": "demo", "command": cmd }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().unwrap();
    let r = s
        .http
        .get(format!("{}/api/v1/jobs/{id}/stream", s.url))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    let mut ev = eventsource_stream::Eventsource::eventsource(r.bytes_stream());
    let mut lat = Vec::new();
    let mut buf = String::new();
    while let Some(e) = ev.next().await {
        let e = e.unwrap();
        if e.event != "output" {
            continue;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as f64;
        let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
        buf.push_str(v["data"].as_str().unwrap());
        while let Some(pos) = buf.find('\n') {
            let line: String = buf.drain(..=pos).collect();
            if let Ok(ts) = line.trim().parse::<f64>() {
                lat.push((now - ts) / 1e6);
            }
        }
    }
    let _ = store;
    println!("\nSSE line latency (host prints → SSE client receives), {} lines: p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms", lat.len(), pct(&mut lat, 0.5), pct(&mut lat, 0.95), pct(&mut lat, 1.0));
    sd.cancel();
    s.sd.cancel();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let jobs: i64 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let requests: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(500);
    println!("GET /api/v1/jobs over {jobs} jobs, {requests} sequential requests per row (latency in ms)\n");
    println!("| database | query | p50 | p95 | p99 |\n|---|---|---|---|---|");
    db_bench("SQLite", None, jobs, requests).await;
    if let Ok(pg) = std::env::var("REMORA_BENCH_PG_URL") {
        db_bench("PostgreSQL", Some(pg), jobs, requests).await;
    }
    sse_bench(100).await;
}
