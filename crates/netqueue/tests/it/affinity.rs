//! Affinity over the wire: PUSH_KEYED, RESERVE_AS and RELEASE between separate connections
//! (one per consumer, as separate worker processes have).

use std::time::{Duration, Instant};

use bytes::Bytes;
use remora_netqueue::{Push, ServerConfig};

use crate::support::{eventually, TestServer};

const LEASE: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_millis(400);

#[tokio::test]
async fn a_keyed_message_waits_for_its_owner_at_most_the_hold_and_a_closed_owner_frees_it() {
    let srv = TestServer::start(ServerConfig {
        affinity_wait: WAIT,
        ..ServerConfig::default()
    })
    .await;
    let pusher = srv.client().await;
    let a = srv.client().await;
    let b = srv.client().await;
    let push = |id: &str| Push::new("jobs", id, Bytes::new()).affinity("server-1");

    pusher.push(push("m1")).await.unwrap();
    let d = a
        .reserve_as("A", &["jobs"], 1, Duration::ZERO, LEASE)
        .await
        .unwrap();
    assert_eq!(d.len(), 1, "nobody owned the key: A takes it");
    a.ack("jobs", "m1", d[0].lease_id).await.unwrap();

    // A is busy (not reserving): B waits out the hold, then gets the message.
    pusher.push(push("m2")).await.unwrap();
    let t = Instant::now();
    let d = b
        .reserve_as("B", &["jobs"], 1, Duration::from_secs(5), LEASE)
        .await
        .unwrap();
    let waited = t.elapsed();
    assert_eq!(d.len(), 1);
    assert!(
        waited >= WAIT - Duration::from_millis(50) && waited < WAIT + Duration::from_secs(2),
        "held {waited:?}, the hold is {WAIT:?}"
    );
    b.ack("jobs", "m2", d[0].lease_id).await.unwrap();

    // B owns the key now; A waiting in a long poll is not handed it, B is at once.
    pusher.push(push("m3")).await.unwrap();
    let d = a
        .reserve_as("A", &["jobs"], 1, Duration::from_millis(100), LEASE)
        .await
        .unwrap();
    assert!(d.is_empty(), "held for B");
    let d = b
        .reserve_as("B", &["jobs"], 1, Duration::ZERO, LEASE)
        .await
        .unwrap();
    assert_eq!(d.len(), 1);
    b.ack("jobs", "m3", d[0].lease_id).await.unwrap();

    // B's connection closes: its keys go at once, A need not wait out the hold.
    pusher.push(push("m4")).await.unwrap();
    drop(b);
    eventually(Duration::from_secs(5), "B's keys released", || async {
        pusher.stats().await.unwrap().affinity.keys == 0
    })
    .await;
    let t = Instant::now();
    let d = a
        .reserve_as("A", &["jobs"], 1, Duration::from_secs(5), LEASE)
        .await
        .unwrap();
    assert_eq!(d.len(), 1);
    assert!(t.elapsed() < WAIT, "no hold once the owner is gone");

    // RELEASE by the owner frees a key the same way.
    a.ack("jobs", "m4", d[0].lease_id).await.unwrap();
    pusher.push(push("m5")).await.unwrap();
    a.release("A", false, vec!["server-1".into()])
        .await
        .unwrap();
    let c = srv.client().await;
    let d = c
        .reserve_as("C", &["jobs"], 1, Duration::ZERO, LEASE)
        .await
        .unwrap();
    assert_eq!(d.len(), 1, "released: C takes it without waiting");

    let s = pusher.stats().await.unwrap().affinity;
    assert_eq!(s.wait_ms, WAIT.as_millis() as u64);
    assert_eq!((s.unowned_total, s.hits_total), (3, 1), "{s:?}");
    assert_eq!(s.misses_total, 1, "{s:?}");
    srv.stop().await;
}
