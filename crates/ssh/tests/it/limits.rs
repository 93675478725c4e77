//! The pool's idle policy (idle timeout, at most `max_idle` idle connections) and the
//! error a connect gets once the process's open-file limit is used up.

use crate::{cfg, target};
use remora_ssh::pool::Pool;
use remora_ssh::{Connection, SshError};
use remora_testkit::require;
use remora_testkit::sshd::SshHost;
use std::time::Duration;

/// Wait until dropped leases have given their slots back (after sshd freed the session).
async fn settled(pool: &Pool, busy: usize) -> (usize, usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = pool.stats().await;
        if s.1 == busy {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "slots not back: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_pool_keeps_at_most_max_idle_idle_connections_least_recently_used_first() {
    let h = require!(SshHost::start());
    let t = target(&h);
    let pool = Pool::new(cfg());
    // Three servers (pool keys) on one sshd: one connection each, used in order a, b, c.
    for key in ["a", "b", "c"] {
        drop(pool.lease(key, &t).await.unwrap());
    }
    assert_eq!(settled(&pool, 0).await, (3, 0));
    // A leased connection is not idle: it survives even a zero timeout and max_idle 0.
    let busy = pool.lease("a", &t).await.unwrap();
    assert_eq!(pool.expire_idle(Duration::from_secs(60), 0).await, 2);
    assert_eq!(pool.stats().await, (1, 1));
    drop(busy);
    for key in ["b", "c"] {
        drop(pool.lease(key, &t).await.unwrap());
    }
    settled(&pool, 0).await;
    assert_eq!(
        pool.connects_total
            .load(std::sync::atomic::Ordering::Relaxed),
        5
    );
    // Max idle 1 of 3 idle: a (least recently used) and b close, c stays and is reused.
    assert_eq!(pool.expire_idle(Duration::from_secs(60), 1).await, 2);
    assert_eq!(pool.stats().await, (1, 0));
    drop(pool.lease("c", &t).await.unwrap());
    settled(&pool, 0).await;
    assert_eq!(
        pool.connects_total
            .load(std::sync::atomic::Ordering::Relaxed),
        5,
        "c's connection was kept"
    );
    // The idle timeout: zero closes every idle connection.
    assert_eq!(pool.expire_idle(Duration::ZERO, 100).await, 1);
    assert_eq!(pool.stats().await, (0, 0));
}

// nextest runs each test in its own process: lowering this process's limit is contained.
#[tokio::test]
async fn a_connect_past_the_open_file_limit_says_which_limit_and_what_to_change() {
    let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    rlimit::Resource::NOFILE.set(open + 16, hard).unwrap();
    let mut held = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) if e.raw_os_error() == Some(24) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(held.len() < 1000, "the lowered limit did not apply");
    }
    let t = remora_ssh::Target {
        host: "127.0.0.1".into(),
        port: 1,
        user: "nobody".into(),
        creds: Default::default(),
        pinned: None,
        trusted_cas: Vec::new(),
        jumps: Vec::new(),
        server_id: None,
    };
    let err = Connection::connect(&t, &cfg())
        .await
        .err()
        .expect("no fd left");
    drop(held);
    rlimit::Resource::NOFILE.set(hard, hard).unwrap();
    let SshError::ConnectFailed { reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        reason.contains(&format!("open-file limit ({})", open + 16)),
        "{reason}"
    );
    assert!(reason.contains("REMORA_SSH_MAX_IDLE"), "{reason}");
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The memory one open pooled connection costs this process, against a real sshd: RSS with
/// N = 0, 100, 500 connections held (docs/benchmarks.md). A measurement, not a check of the
/// product: run it on purpose with
/// `cargo nextest run -p remora-ssh --run-ignored only -E 'test(memory_per_open_connection)' --no-capture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement (opens 500 SSH connections); see docs/benchmarks.md"]
async fn memory_per_open_connection() {
    let h = require!(SshHost::start());
    let t = target(&h);
    let pool = Pool::new(cfg());
    // Warm up the allocator and the crypto once so N = 0 is not the process before any SSH.
    drop(pool.lease("warm", &t).await.unwrap());
    settled(&pool, 0).await;
    pool.expire_idle(Duration::ZERO, 0).await;
    let mut held = Vec::new();
    let base = rss_kib();
    println!("| open connections | RSS (MiB) | per connection (KiB) |\n|---|---|---|");
    println!("| 0 | {:.1} | - |", base as f64 / 1024.0);
    for n in [100usize, 500] {
        while held.len() < n {
            // Eight at a time: below sshd's MaxStartups 10 (unauthenticated connections).
            let batch: Vec<_> = (held.len()..n.min(held.len() + 8))
                .map(|i| {
                    let (pool, t) = (&pool, &t);
                    async move { pool.lease(&format!("s{i}"), t).await.unwrap() }
                })
                .collect();
            held.extend(futures::future::join_all(batch).await);
        }
        assert_eq!(pool.stats().await.0, n);
        let rss = rss_kib();
        println!(
            "| {n} | {:.1} | {:.0} |",
            rss as f64 / 1024.0,
            (rss.saturating_sub(base)) as f64 / n as f64
        );
    }
}
