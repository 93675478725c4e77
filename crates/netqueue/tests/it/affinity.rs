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

/// A server from before affinity: it knows PUSH and RESERVE and answers `unknown_command` to the
/// affinity opcodes (0x0c..=0x0e), as the real one of protocol version 1 without them does.
/// Returns its address and a log of the opcodes it was sent.
async fn server_without_affinity() -> (String, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    use futures::{SinkExt, StreamExt};
    use remora_netqueue::protocol::{
        decode_request, encode_reply, PushOutcome, Reply, Request, RequestError,
    };
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let log = log.clone();
            tokio::spawn(async move {
                let codec = tokio_util::codec::LengthDelimitedCodec::builder()
                    .length_field_type::<u32>()
                    .new_codec();
                let mut f = tokio_util::codec::Framed::new(s, codec);
                while let Some(Ok(body)) = f.next().await {
                    let op = body[0];
                    log.lock().unwrap().push(op);
                    let (rid, reply) = match decode_request(body.freeze()) {
                        // Decoding is this build's, so refuse what the old server did not know.
                        Ok((rid, _)) if (0x0c..=0x0e).contains(&op) => (
                            rid,
                            Reply::Error {
                                code: remora_netqueue::ErrorCode::UnknownCommand,
                                message: format!("unknown command 0x{op:02x}"),
                            },
                        ),
                        Ok((rid, Request::Hello { .. })) => (rid, Reply::HelloOk { version: 1 }),
                        Ok((rid, Request::Push { .. })) => {
                            (rid, Reply::Pushed(PushOutcome::Queued))
                        }
                        Ok((rid, Request::Reserve { .. })) => (rid, Reply::Deliveries(Vec::new())),
                        Ok((rid, _)) => (rid, Reply::Ok),
                        Err((
                            rid,
                            RequestError::UnknownCommand(_) | RequestError::Malformed(_),
                        )) => (
                            rid.unwrap_or(0),
                            Reply::Error {
                                code: remora_netqueue::ErrorCode::BadRequest,
                                message: String::new(),
                            },
                        ),
                    };
                    if f.send(encode_reply(rid, &reply)).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn against_a_server_without_affinity_the_client_falls_back_to_plain_requests() {
    let (addr, seen) = server_without_affinity().await;
    let c = remora_netqueue::Client::connect(&addr, None).await.unwrap();
    let out = c
        .push(Push::new("jobs", "j1", Bytes::new()).affinity("server-1"))
        .await
        .unwrap();
    assert_eq!(out, remora_netqueue::PushOutcome::Queued);
    let d = c
        .reserve_as("A", &["jobs"], 1, Duration::ZERO, LEASE)
        .await
        .unwrap();
    assert!(d.is_empty());
    c.release("A", true, Vec::new()).await.unwrap();
    c.push(Push::new("jobs", "j2", Bytes::new()).affinity("server-1"))
        .await
        .unwrap();
    // HELLO, PUSH_KEYED refused, PUSH; then plain forms only (the client remembers), and
    // RELEASE is skipped altogether.
    assert_eq!(*seen.lock().unwrap(), [0x01, 0x0c, 0x02, 0x03, 0x02]);
}
