//! The typed client against an in-process server.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use remora_netqueue::{Client, ClientError, ErrorCode, Push, PushOutcome, ServerConfig};

use crate::support::{eventually, TestServer};

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn push_reserve_ack_priority_and_duplicates() {
    let srv = TestServer::start(ServerConfig::default()).await;
    let c = srv.client().await;
    c.ping().await.unwrap();
    for (id, prio) in [("low", 1), ("high", 10), ("mid", 5), ("high2", 10)] {
        let out = c
            .push(Push::new("jobs", id, Bytes::from(id)).priority(prio))
            .await
            .unwrap();
        assert_eq!(out, PushOutcome::Queued);
    }
    assert_eq!(
        c.push(Push::new("jobs", "mid", "again")).await.unwrap(),
        PushOutcome::Duplicate
    );
    let stats = c.stats().await.unwrap();
    let q = &stats.queues["jobs"];
    assert_eq!(
        (q.ready, q.ready_by_priority[&10], q.ready_by_priority[&1]),
        (4, 2, 1)
    );

    let got = c
        .reserve(&["jobs"], 10, Duration::ZERO, LEASE)
        .await
        .unwrap();
    let ids: Vec<_> = got.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["high", "high2", "mid", "low"]);
    assert_eq!(
        got[2].payload,
        Bytes::from("mid"),
        "duplicate push did not replace the payload"
    );
    for d in &got {
        c.ack(&d.queue, &d.id, d.lease_id).await.unwrap();
    }
    let err = c.ack("jobs", "high", got[0].lease_id).await.unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::UnknownLease));
    let q = &c.stats().await.unwrap().queues["jobs"];
    assert_eq!((q.total, q.acked_total), (0, 4));
    srv.stop().await;
}

#[tokio::test]
async fn bad_token_is_reported_at_connect() {
    let srv = TestServer::start(ServerConfig {
        token: Some("s3cret".into()),
        ..ServerConfig::default()
    })
    .await;
    for bad in [None, Some("wrong".to_string())] {
        match Client::connect(&srv.addr, bad).await {
            Err(ClientError::Server {
                code: ErrorCode::Unauthorized,
                ..
            }) => {}
            other => panic!("expected unauthorized, got {other:?}"),
        }
    }
    let c = Client::connect(&srv.addr, Some("s3cret".into()))
        .await
        .unwrap();
    c.ping().await.unwrap();
}

#[tokio::test]
async fn long_poll_returns_as_soon_as_a_message_arrives_and_empty_after_wait() {
    let srv = TestServer::start(ServerConfig::default()).await;
    let c = srv.client().await;
    let start = std::time::Instant::now();
    assert!(c
        .reserve(&["q"], 1, Duration::from_millis(100), LEASE)
        .await
        .unwrap()
        .is_empty());
    assert!(start.elapsed() >= Duration::from_millis(100));

    let waiter = {
        let c = c.clone();
        tokio::spawn(async move {
            let d = c
                .reserve(&["other", "q"], 1, Duration::from_secs(20), LEASE)
                .await
                .unwrap();
            (d, std::time::Instant::now())
        })
    };
    // The reserve must be parked before we push, or this measures nothing.
    eventually(Duration::from_secs(5), "reserve parked", || async {
        c.stats().await.is_ok()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let pushed_at = std::time::Instant::now();
    c.push(Push::new("q", "m", "x")).await.unwrap();
    let (d, got_at) = waiter.await.unwrap();
    assert_eq!(d.len(), 1);
    assert!(
        got_at - pushed_at < Duration::from_millis(500),
        "woken promptly, took {:?}",
        got_at - pushed_at
    );
}

#[tokio::test(start_paused = true)]
async fn unacked_message_returns_after_lease_with_attempt_2() {
    let srv = TestServer::start(ServerConfig::default()).await;
    let producer = srv.client().await;
    producer
        .push(Push::new("q", "job-1", "payload"))
        .await
        .unwrap();
    {
        let consumer = srv.client().await;
        let d = consumer
            .reserve(&["q"], 1, Duration::ZERO, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!((d[0].id.as_str(), d[0].attempt), ("job-1", 1));
        // Dropped without ACK: the connection closes.
    }
    let before = tokio::time::Instant::now();
    let other = srv.client().await;
    let d = other
        .reserve(&["q"], 1, Duration::from_secs(120), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].id.as_str(), d[0].attempt, &d[0].payload[..]),
        ("job-1", 2, &b"payload"[..])
    );
    let waited = tokio::time::Instant::now() - before;
    assert!(
        waited >= Duration::from_secs(59) && waited < Duration::from_secs(61),
        "redelivered at lease end, after {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn stale_ack_after_relese_is_rejected_and_touch_keeps_a_lease() {
    let srv = TestServer::start(ServerConfig::default()).await;
    let c = srv.client().await;
    c.push(Push::new("q", "m", "x")).await.unwrap();
    let first = c
        .reserve(&["q"], 1, Duration::ZERO, Duration::from_secs(10))
        .await
        .unwrap()
        .remove(0);
    let second = c
        .reserve(&["q"], 1, Duration::from_secs(30), Duration::from_secs(10))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(second.attempt, 2);
    let err = c.ack("q", "m", first.lease_id).await.unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::UnknownLease));
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(8)).await;
        c.touch("q", "m", second.lease_id, Duration::from_secs(10))
            .await
            .unwrap();
    }
    c.ack("q", "m", second.lease_id).await.unwrap();
    assert_eq!(c.stats().await.unwrap().queues["q"].expired_total, 1);
}

#[tokio::test]
async fn nack_delay_cancel_and_nack_never_dead_letters() {
    let srv = TestServer::start(ServerConfig {
        max_attempts: 2,
        ..ServerConfig::default()
    })
    .await;
    let c = srv.client().await;
    c.push(Push::new("q", "a", "1")).await.unwrap();
    c.push(Push::new("q", "b", "2").delay(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert!(c.cancel("q", "b").await.unwrap());
    assert!(!c.cancel("q", "b").await.unwrap());
    let d = c
        .reserve(&["q"], 1, Duration::ZERO, LEASE)
        .await
        .unwrap()
        .remove(0);
    assert!(
        !c.cancel("q", "a").await.unwrap(),
        "a leased message is not cancelled"
    );
    c.nack("q", "a", d.lease_id, Duration::ZERO).await.unwrap();
    let d = c
        .reserve(&["q"], 1, Duration::ZERO, LEASE)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(d.attempt, 2);
    c.nack("q", "a", d.lease_id, Duration::ZERO).await.unwrap();
    // A NACK is a consumer's "not now": past max_attempts it still requeues.
    let q = &c.stats().await.unwrap().queues["q"];
    assert_eq!((q.total, q.dead_lettered), (1, 0));
    let d = c
        .reserve(&["q"], 1, Duration::ZERO, LEASE)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(d.attempt, 3);
}

#[tokio::test]
async fn queue_full_and_invalid_arguments() {
    let srv = TestServer::start(ServerConfig {
        max_queue_messages: 2,
        ..ServerConfig::default()
    })
    .await;
    let c = srv.client().await;
    c.push(Push::new("q", "1", "")).await.unwrap();
    c.push(Push::new("q", "2", "")).await.unwrap();
    let err = c.push(Push::new("q", "3", "")).await.unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::QueueFull));
    assert!(err.is_transient());
    assert!(matches!(
        c.push(Push::new("q", "4", "").priority(0)).await,
        Err(ClientError::InvalidArgument(_))
    ));
    let err = c.push(Push::new("", "4", "")).await.unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::BadRequest));
    let err = c
        .reserve(&["q"], 0, Duration::ZERO, LEASE)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::BadRequest));
    c.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_consumers_drain_10k_exactly_once() {
    const N: usize = 10_000;
    let srv = TestServer::start(ServerConfig::default()).await;
    let producer = srv.client().await;
    let mut pushes = Vec::new();
    for i in 0..N {
        let p = producer.clone();
        pushes.push(async move {
            p.push(Push::new(
                "work",
                format!("m{i}"),
                Bytes::from(vec![1u8; 64]),
            ))
            .await
        });
        if pushes.len() == 500 {
            for r in futures::future::join_all(pushes.drain(..)).await {
                assert_eq!(r.unwrap(), PushOutcome::Queued);
            }
        }
    }
    for r in futures::future::join_all(pushes).await {
        r.unwrap();
    }
    let mut consumers = Vec::new();
    for _ in 0..4 {
        let c = srv.client().await;
        consumers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let ds = c
                    .reserve(
                        &["work"],
                        32,
                        Duration::from_millis(200),
                        Duration::from_secs(60),
                    )
                    .await
                    .unwrap();
                if ds.is_empty() {
                    return seen;
                }
                for d in ds {
                    assert_eq!(d.attempt, 1);
                    c.ack(&d.queue, &d.id, d.lease_id).await.unwrap();
                    seen.push(d.id);
                }
            }
        }));
    }
    let mut all = Vec::new();
    let mut per = Vec::new();
    for h in consumers {
        let seen = h.await.unwrap();
        per.push(seen.len());
        all.extend(seen);
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), N, "per consumer {per:?}");
    assert_eq!(unique.len(), N);
    let q = &producer.stats().await.unwrap().queues["work"];
    assert_eq!((q.total, q.acked_total, q.expired_total), (0, N as u64, 0));
}

#[tokio::test]
async fn client_reconnects_after_server_restart() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let h = tokio::spawn(remora_netqueue::run(
        listener,
        ServerConfig::default(),
        shutdown.clone(),
    ));
    let c = Client::connect(&addr.to_string(), None).await.unwrap();
    c.ping().await.unwrap();
    shutdown.cancel();
    h.await.unwrap().unwrap();
    eventually(
        Duration::from_secs(5),
        "client notices the drop",
        || async { !c.is_connected() },
    )
    .await;
    let t = std::time::Instant::now();
    assert!(matches!(
        c.ping().await,
        Err(ClientError::Unavailable(_)) | Err(ClientError::Disconnected)
    ));
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "fails fast while down"
    );

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let _h = tokio::spawn(remora_netqueue::run(
        listener,
        ServerConfig::default(),
        shutdown.clone(),
    ));
    eventually(Duration::from_secs(10), "client reconnects", || async {
        c.ping().await.is_ok()
    })
    .await;
    shutdown.cancel();
}
