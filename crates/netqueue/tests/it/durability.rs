//! Durability: restart, replay, torn and corrupt tails, compaction, and kill -9 of the real binary.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use remora_netqueue::{Client, ClientConfig, FsyncPolicy, Push, PushOutcome, ServerConfig};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::TestServer;

/// Payload derived from the id, with an id-dependent length: a zero-filled, partial or mixed-up
/// message can never pass [`check_payload`].
fn payload_for(id: &str) -> Bytes {
    let seed = id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let len = 16 + (seed % 200) as usize;
    let mut v = Vec::with_capacity(len + id.len());
    v.extend_from_slice(id.as_bytes());
    v.push(b'|');
    v.extend((0..len).map(|i| (seed.wrapping_add(i as u32) % 251) as u8 + 1));
    Bytes::from(v)
}

fn check_payload(id: &str, payload: &[u8]) {
    assert_eq!(payload, &payload_for(id)[..], "payload of {id} is corrupt");
}

fn config(dir: &Path, fsync: FsyncPolicy) -> ServerConfig {
    ServerConfig {
        data_dir: Some(dir.to_owned()),
        fsync,
        ..ServerConfig::default()
    }
}

async fn drain(c: &Client, queue: &str) -> Vec<remora_netqueue::Delivery> {
    let mut all = Vec::new();
    loop {
        let ds = c
            .reserve(&[queue], 1000, Duration::ZERO, Duration::from_secs(600))
            .await
            .unwrap();
        if ds.is_empty() {
            return all;
        }
        all.extend(ds);
    }
}

#[tokio::test]
async fn state_survives_restart_for_every_policy() {
    for fsync in [
        FsyncPolicy::Always,
        FsyncPolicy::Interval(Duration::from_millis(5)),
        FsyncPolicy::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let srv = TestServer::start(config(dir.path(), fsync)).await;
        let c = srv.client().await;
        for i in 0..50 {
            let id = format!("m{i}");
            c.push(Push::new("q", id.clone(), payload_for(&id)).priority((i % 10 + 1) as u8))
                .await
                .unwrap();
        }
        c.push(Push::new("q", "later", payload_for("later")).delay(Duration::from_secs(3600)))
            .await
            .unwrap();
        let ds = c
            .reserve(&["q"], 5, Duration::ZERO, Duration::from_secs(60))
            .await
            .unwrap();
        c.ack("q", &ds[0].id, ds[0].lease_id).await.unwrap();
        assert!(c.cancel("q", "m1").await.unwrap());
        // A final round-trip after the ack/cancel, then a clean stop flushes the log.
        c.ping().await.unwrap();
        srv.stop().await;

        let srv = TestServer::start(config(dir.path(), fsync)).await;
        let c = srv.client().await;
        let q = c.stats().await.unwrap().queues["q"].clone();
        assert_eq!((q.total, q.delayed, q.leased), (49, 1, 0), "{fsync}");
        let got = drain(&c, "q").await;
        assert_eq!(got.len(), 48);
        let leased: HashSet<_> = ds[1..].iter().map(|d| d.id.clone()).collect();
        for d in &got {
            check_payload(&d.id, &d.payload);
            let expect = if leased.contains(&d.id) { 2 } else { 1 };
            assert_eq!(
                d.attempt, expect,
                "{} keeps its attempt count across restart",
                d.id
            );
        }
        // Priorities still order delivery after replay.
        assert!(got.windows(2).all(|w| w[0].priority >= w[1].priority));
        srv.stop().await;
    }
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

async fn write_then_stop(dir: &Path, n: usize) {
    let srv = TestServer::start(config(dir, FsyncPolicy::Always)).await;
    let c = srv.client().await;
    for i in 0..n {
        let id = format!("m{i}");
        c.push(Push::new("q", id.clone(), payload_for(&id)))
            .await
            .unwrap();
    }
    srv.stop().await;
}

async fn replayed_ids(dir: &Path) -> Vec<String> {
    let srv = TestServer::start(config(dir, FsyncPolicy::Always)).await;
    let c = srv.client().await;
    let got = drain(&c, "q").await;
    for d in &got {
        check_payload(&d.id, &d.payload);
    }
    // The log keeps working after a truncating replay.
    c.push(Push::new("q", "after", payload_for("after")))
        .await
        .unwrap();
    srv.stop().await;
    got.into_iter().map(|d| d.id).collect()
}

#[tokio::test]
async fn torn_zeroed_and_corrupt_tails_are_truncated_never_replayed() {
    let n = 20;
    let expect_prefix = |k: usize| (0..k).map(|i| format!("m{i}")).collect::<Vec<_>>();

    // Torn: the last record cut short at every length of its tail.
    let dir = tempfile::tempdir().unwrap();
    write_then_stop(dir.path(), n).await;
    let seg = segments(dir.path()).pop().unwrap();
    let full = std::fs::read(&seg).unwrap();
    for cut in [1usize, 5, 9, 30] {
        let d2 = tempfile::tempdir().unwrap();
        std::fs::write(
            d2.path().join(seg.file_name().unwrap()),
            &full[..full.len() - cut],
        )
        .unwrap();
        assert_eq!(
            replayed_ids(d2.path()).await,
            expect_prefix(n - 1),
            "cut {cut}"
        );
        // The replay truncated the file and the log went on cleanly after the cut: the unacked
        // prefix is still there, followed by the push made after the truncating replay.
        let mut again = expect_prefix(n - 1);
        again.push("after".into());
        assert_eq!(
            replayed_ids(d2.path()).await,
            again,
            "log after truncation, cut {cut}"
        );
    }

    // Zero-filled tail (as after a crash that extended the file but lost the data).
    let d2 = tempfile::tempdir().unwrap();
    let mut zeroed = full.clone();
    zeroed.extend(std::iter::repeat_n(0u8, 4096));
    std::fs::write(d2.path().join(seg.file_name().unwrap()), &zeroed).unwrap();
    assert_eq!(replayed_ids(d2.path()).await, expect_prefix(n));

    // Corruption inside the 11th record: it and everything after it are dropped.
    let d2 = tempfile::tempdir().unwrap();
    let mut bad = full.clone();
    let pos = find(&bad, b"m10|").expect("record m10 in the log") + 6;
    bad[pos] ^= 0xff;
    std::fs::write(d2.path().join(seg.file_name().unwrap()), &bad).unwrap();
    assert_eq!(replayed_ids(d2.path()).await, expect_prefix(10));

    // Garbage header: the segment is dropped entirely.
    let d2 = tempfile::tempdir().unwrap();
    std::fs::write(d2.path().join(seg.file_name().unwrap()), vec![0u8; 100]).unwrap();
    assert_eq!(replayed_ids(d2.path()).await, Vec::<String>::new());
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn compaction_keeps_disk_use_near_live_data() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig {
        segment_bytes: 64 * 1024,
        compact_min_bytes: 256 * 1024,
        ..config(dir.path(), FsyncPolicy::Never)
    };
    let srv = TestServer::start(cfg.clone()).await;
    let c = srv.client().await;
    let body = Bytes::from(vec![7u8; 1000]);
    // 3000 messages of 1 KB pass through; 10 stay.
    for i in 0..3000 {
        c.push(Push::new("q", format!("m{i}"), body.clone()))
            .await
            .unwrap();
        if i >= 10 {
            let d = c
                .reserve(&["q"], 1, Duration::ZERO, Duration::from_secs(60))
                .await
                .unwrap()
                .remove(0);
            c.ack("q", &d.id, d.lease_id).await.unwrap();
        }
    }
    c.ping().await.unwrap();
    let log_bytes = c.stats().await.unwrap().server.log_bytes;
    srv.stop().await;
    let on_disk: u64 = segments(dir.path())
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(
        on_disk < 600 * 1024,
        "3 MB went through, {on_disk} bytes on disk (stats said {log_bytes})"
    );
    let srv = TestServer::start(cfg).await;
    let c = srv.client().await;
    let q = c.stats().await.unwrap().queues["q"].clone();
    assert_eq!(q.total, 10);
    srv.stop().await;
}

/// The real binary as a child process, killed with SIGKILL.
struct Child {
    proc: tokio::process::Child,
    addr: String,
}

async fn spawn_binary(dir: &Path, fsync: &str) -> Child {
    // A small compaction threshold keeps replay short across hundreds of restarts, and makes
    // the kills land during compactions too.
    let mut proc = tokio::process::Command::new(env!("CARGO_BIN_EXE_remora-netqueue"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--compact-min-bytes",
            "262144",
            "--fsync",
            fsync,
            "--data-dir",
        ])
        .arg(dir)
        .env_remove("REMORA_QUEUE_TOKEN")
        .env_remove("REMORA_QUEUE_ADDR")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn remora-netqueue");
    let stdout = proc.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("server prints its address")
        .unwrap()
        .expect("a line");
    let addr = line
        .strip_prefix("listening on ")
        .expect("listening line")
        .to_owned();
    Child { proc, addr }
}

async fn kill9(mut c: Child) {
    c.proc.start_kill().unwrap();
    let _ = c.proc.wait().await;
}

/// Pushes `ids` pipelined (up to `window` in flight) until done or the connection dies. Every
/// acknowledged id is recorded in `acked` the moment its ack arrives.
async fn pushes(c: &Client, ids: Vec<String>, window: usize, acked: Arc<Mutex<Vec<String>>>) {
    let mut inflight = FuturesUnordered::new();
    let mut ids = ids.into_iter();
    loop {
        while inflight.len() < window {
            let Some(id) = ids.next() else { break };
            let c = c.clone();
            inflight.push(async move {
                let r = c
                    .push(Push::new("load", id.clone(), payload_for(&id)))
                    .await;
                (id, r)
            });
        }
        match inflight.next().await {
            None => return,
            Some((id, Ok(PushOutcome::Queued))) => acked.lock().unwrap().push(id),
            Some((_, Ok(PushOutcome::Duplicate))) => panic!("fresh ids are never duplicates"),
            Some((_, Err(_))) => return,
        }
    }
}

fn client_config() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(20),
        ..ClientConfig::default()
    }
}

/// Waits until `n` pushes are acknowledged (bounded by a deadline).
async fn wait_acked(acked: &Arc<Mutex<Vec<String>>>, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < n {
        assert!(tokio::time::Instant::now() < deadline, "load too slow");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn verify_after_restart(dir: &Path, acked: &[String], pushed: &BTreeSet<String>) -> usize {
    let child = spawn_binary(dir, "always").await;
    let c = Client::connect_with(&child.addr, client_config())
        .await
        .unwrap();
    let got = drain(&c, "load").await;
    let mut seen = HashSet::new();
    for d in &got {
        assert!(
            pushed.contains(&d.id),
            "replayed an id never pushed: {:?}",
            d.id
        );
        check_payload(&d.id, &d.payload);
        assert!(seen.insert(d.id.clone()), "{} delivered twice", d.id);
    }
    for id in acked {
        assert!(seen.contains(id), "acknowledged push {id} lost");
    }
    kill9(child).await;
    got.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_10k_load_with_fsync_always_loses_no_acked_push() {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_binary(dir.path(), "always").await;
    let c = Client::connect_with(&child.addr, client_config())
        .await
        .unwrap();
    let ids: Vec<String> = (0..10_000).map(|i| format!("job-{i:05}")).collect();
    let pushed: BTreeSet<String> = ids.iter().cloned().collect();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let load = tokio::spawn({
        let (c, acked) = (c.clone(), acked.clone());
        async move { pushes(&c, ids, 256, acked).await }
    });
    wait_acked(&acked, 3000).await;
    kill9(child).await;
    load.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 3000 && acked.len() < 10_000,
        "killed mid-load: {} acked",
        acked.len()
    );
    let replayed = verify_after_restart(dir.path(), &acked, &pushed).await;
    eprintln!(
        "kill -9 at {} acked pushes: {} replayed",
        acked.len(),
        replayed
    );
}

/// 200 kill -9s during pipelined pushes (NQ_KILL_CYCLES overrides the count). Every restart
/// first checks that each push acknowledged before the last kill is delivered intact, then acks
/// everything so the next cycle starts small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_kill9_during_pipelined_pushes_never_corrupts_or_loses() {
    let cycles: usize = std::env::var("NQ_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let mut pushed = BTreeSet::new();
    let mut last_acked: Vec<String> = Vec::new();
    let (mut total_acked, mut total_checked) = (0, 0);
    for cycle in 0..=cycles {
        let t0 = std::time::Instant::now();
        let child = spawn_binary(dir.path(), "never").await;
        let c = Client::connect_with(&child.addr, client_config())
            .await
            .unwrap();
        let t1 = t0.elapsed();
        let got = drain(&c, "load").await;
        if std::env::var_os("NQ_TRACE").is_some() {
            eprintln!(
                "cycle {cycle}: spawn+connect {t1:?}, drain {:?}",
                t0.elapsed()
            );
        }
        let mut seen = HashSet::new();
        for d in &got {
            assert!(
                pushed.contains(&d.id),
                "replayed an id never pushed: {:?}",
                d.id
            );
            check_payload(&d.id, &d.payload);
            assert!(seen.insert(d.id.clone()), "{} delivered twice", d.id);
        }
        for id in &last_acked {
            assert!(
                seen.contains(id),
                "cycle {cycle}: acknowledged push {id} lost"
            );
        }
        total_checked += got.len();
        for d in &got {
            c.ack("load", &d.id, d.lease_id).await.unwrap();
        }
        if cycle == cycles {
            kill9(child).await;
            break;
        }
        let ids: Vec<String> = (0..400).map(|i| format!("c{cycle:03}-{i:03}")).collect();
        pushed.extend(ids.iter().cloned());
        let acked = Arc::new(Mutex::new(Vec::new()));
        let load = tokio::spawn({
            let (c, acked) = (c.clone(), acked.clone());
            async move { pushes(&c, ids, 64, acked).await }
        });
        // Kill at a different point each cycle, while pushes are in flight.
        wait_acked(&acked, 20 + (cycle * 37) % 300).await;
        kill9(child).await;
        load.await.unwrap();
        last_acked = acked.lock().unwrap().clone();
        total_acked += last_acked.len();
    }
    eprintln!("{cycles} kill -9 cycles: {total_acked} acked pushes, {total_checked} replayed, none lost or corrupt");
}
