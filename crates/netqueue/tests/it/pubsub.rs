//! Pub/sub: delivery, wildcard, latency, resubscribe after reconnect.

use std::time::{Duration, Instant};

use bytes::Bytes;
use remora_netqueue::ServerConfig;

use crate::support::TestServer;

#[tokio::test]
async fn events_reach_topic_and_wildcard_subscribers_quickly() {
    let srv = TestServer::start(ServerConfig::default()).await;
    let c = srv.client().await;
    let mut one = c.subscribe(vec!["cancel.job-1".into()]).await.unwrap();
    let mut all = c.subscribe(vec!["*".into()]).await.unwrap();
    c.publish("cancel.job-2", Bytes::from_static(b"no"))
        .await
        .unwrap();
    let t = Instant::now();
    c.publish("cancel.job-1", Bytes::from_static(b"stop"))
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(1), one.next())
        .await
        .expect("within 1 s")
        .unwrap();
    let latency = t.elapsed();
    assert_eq!(
        (ev.topic.as_str(), &ev.payload[..]),
        ("cancel.job-1", &b"stop"[..])
    );
    assert!(
        latency < Duration::from_millis(200),
        "publish->receive took {latency:?}"
    );
    let a = all.next().await.unwrap();
    let b = all.next().await.unwrap();
    assert_eq!(
        (a.topic.as_str(), b.topic.as_str()),
        ("cancel.job-2", "cancel.job-1")
    );

    // Ordered, no loss for a subscriber that keeps up.
    for i in 0..500u32 {
        c.publish("cancel.job-1", Bytes::from(i.to_be_bytes().to_vec()))
            .await
            .unwrap();
    }
    for i in 0..500u32 {
        let ev = tokio::time::timeout(Duration::from_secs(5), one.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&ev.payload[..], &i.to_be_bytes());
    }
}

#[tokio::test]
async fn subscription_survives_server_restart() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let h = tokio::spawn(remora_netqueue::run(
        listener,
        ServerConfig::default(),
        shutdown.clone(),
    ));
    let c = remora_netqueue::Client::connect(&addr.to_string(), None)
        .await
        .unwrap();
    let mut sub = c.subscribe(vec!["t".into()]).await.unwrap();
    shutdown.cancel();
    h.await.unwrap().unwrap();

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let _h = tokio::spawn(remora_netqueue::run(
        listener,
        ServerConfig::default(),
        shutdown.clone(),
    ));
    // Publish until the resubscribed connection sees one (events before resubscription are lost
    // by design); bounded by a deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no event after restart");
        let _ = c.publish("t", Bytes::from_static(b"hi")).await;
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
            assert_eq!(&ev.payload[..], b"hi");
            break;
        }
    }
    shutdown.cancel();
}
