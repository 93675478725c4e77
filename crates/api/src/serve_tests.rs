//! Slow clients against the real accept loop on 127.0.0.1 (issue 14 point 8): the header
//! read timeout closes them, the body deadline answers a trickled body 408 and closes its
//! connection, the connection cap holds new connections in the backlog, and normal clients
//! are still served.

use crate::{app, serve, ApiConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

const TIMEOUT: Duration = Duration::from_secs(1);
const CAP: usize = 8;
/// Longest any step may take before the test fails (the condition never came).
const DEADLINE: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    start_with(ApiConfig::default(), &[]).await
}

async fn start_with(cfg: ApiConfig, tokens: &[(&str, &str, &str)]) -> Server {
    let (state, dir) = crate::tests::state_with(cfg, tokens).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let slots = Arc::new(Semaphore::new(CAP));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve::serve(
        listener,
        app(state),
        TIMEOUT,
        slots.clone(),
        shutdown.clone(),
    ));
    Server {
        addr,
        slots,
        shutdown,
        task,
        _dir: dir,
    }
}

/// A client that sends its request head one byte every 200 ms and never finishes it.
/// Returns when the server closed the connection: when it connected, and when it
/// saw the close.
async fn slow_client(addr: SocketAddr) -> (Instant, Instant) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let connected = Instant::now();
    let head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    let mut i = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => return (connected, Instant::now()),
                Ok(_) => {} // an error response before the close
            },
            _ = tick.tick() => {
                let byte = if i < head.len() { head[i] } else { b'a' };
                i += 1;
                if s.write_all(&[byte]).await.is_err() {
                    return (connected, Instant::now());
                }
            }
        }
        assert!(
            connected.elapsed() < DEADLINE,
            "a slow client was not disconnected within {DEADLINE:?}"
        );
    }
}

/// A whole `GET /health` on a fresh connection; the status code and when it arrived.
async fn health(addr: SocketAddr) -> (u16, Instant) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, s.read_to_end(&mut out))
        .await
        .expect("no response to GET /health within the deadline")
        .unwrap();
    let at = Instant::now();
    let text = String::from_utf8_lossy(&out);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    (code, at)
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn slow_header_client_is_disconnected_after_the_timeout() {
    let srv = start().await;
    let (connected, closed) = slow_client(srv.addr).await;
    let took = closed - connected;
    assert!(
        took >= TIMEOUT - Duration::from_millis(50),
        "closed after {took:?}, before the header timeout"
    );
    // A normal client meanwhile and afterwards is served.
    assert_eq!(health(srv.addr).await.0, 200);
    srv.shutdown.cancel();
    tokio::time::timeout(DEADLINE, srv.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn connections_over_the_cap_wait_in_the_backlog_and_are_then_served() {
    let srv = start().await;

    // (c) A normal client is served while fewer slow clients than the cap are trying.
    let few: Vec<_> = (0..CAP / 2)
        .map(|_| tokio::spawn(slow_client(srv.addr)))
        .collect();
    let slots = srv.slots.clone();
    // The accept loop holds one permit while it waits for the next connection.
    wait_for("the first slow clients to be accepted", || {
        slots.available_permits() == CAP - CAP / 2 - 1
    })
    .await;
    assert_eq!(health(srv.addr).await.0, 200);
    for t in few {
        t.await.unwrap();
    }
    wait_for("their slots to be free again", || {
        slots.available_permits() == CAP - 1
    })
    .await;

    // (b) Cap-many slow clients hold every slot: a new connection is not served until
    // one of them is closed by the header timeout, which cannot be before the first
    // of them connected plus the timeout.
    let first_connect = Instant::now();
    let slow: Vec<_> = (0..CAP)
        .map(|_| tokio::spawn(slow_client(srv.addr)))
        .collect();
    wait_for("every slot to be taken", || slots.available_permits() == 0).await;
    let (code, answered) = health(srv.addr).await;
    assert_eq!(code, 200, "the waiting connection is served in the end");
    assert!(
        answered >= first_connect + TIMEOUT,
        "served {:?} after the slow clients connected, while all {CAP} slots were held",
        answered - first_connect
    );
    for t in slow {
        let (c, closed) = t.await.unwrap();
        assert!(closed - c >= TIMEOUT - Duration::from_millis(50));
    }

    // (c) After the slow clients are gone, every slot is free and clients are served.
    wait_for("every slot to be free again", || {
        slots.available_permits() == CAP - 1
    })
    .await;
    assert_eq!(health(srv.addr).await.0, 200);
    srv.shutdown.cancel();
    tokio::time::timeout(DEADLINE, srv.task)
        .await
        .unwrap()
        .unwrap();
}

const BODY_TOKEN: &str = "rmr_body_timeout_test_token";

/// A request whose head arrives at once and whose body is trickled one byte every 100 ms
/// (far less than its Content-Length). Returns what the server answered before it closed the
/// connection, and how long after the head that close came.
async fn trickled_body(addr: SocketAddr, path: &str) -> (String, Duration) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {BODY_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let sent = Instant::now();
    let body = b"{\"name\": \"web1\", \"hostname\": \"10.0.0.1\", \"user\": \"";
    let mut i = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            },
            _ = tick.tick() => {
                let byte = body.get(i).copied().unwrap_or(b'a');
                i += 1;
                // A write after the server closed may fail; the read above sees the close.
                let _ = s.write_all(&[byte]).await;
            }
        }
        assert!(
            sent.elapsed() < DEADLINE,
            "a trickled body was not cut off within {DEADLINE:?}; read {:?}",
            String::from_utf8_lossy(&out)
        );
    }
    (String::from_utf8_lossy(&out).into_owned(), sent.elapsed())
}

#[tokio::test]
async fn a_trickled_body_is_answered_408_and_its_connection_closed() {
    let limit = Duration::from_secs(1);
    let cfg = ApiConfig {
        body_timeout: limit,
        ..ApiConfig::default()
    };
    let srv = start_with(cfg, &[("t", BODY_TOKEN, "admin")]).await;
    // Both a JSON handler and the import handler (a bigger body) are cut at the deadline.
    for path in ["/api/v1/servers", "/api/v1/servers/import"] {
        let (resp, took) = trickled_body(srv.addr, path).await;
        assert!(resp.starts_with("HTTP/1.1 408"), "{path}: {resp:?}");
        assert!(resp.contains("\"body_timeout\""), "{path}: {resp:?}");
        assert!(resp.contains("REMORA_BODY_TIMEOUT"), "{path}: {resp:?}");
        assert!(
            resp.to_ascii_lowercase().contains("connection: close"),
            "{path}: {resp:?}"
        );
        assert!(
            took >= limit - Duration::from_millis(50),
            "{path}: cut after {took:?}"
        );
        // Trickling bytes did not extend it: cut well before 100000 bytes at 10 a second.
        assert!(took < limit * 4, "{path}: cut only after {took:?}");
    }
    // Nothing was created, and a whole body sent at once is served as usual.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let body = r#"{"name": "web1", "hostname": "10.0.0.1", "user": "u", "password": "pw"}"#;
    let req = format!(
        "POST /api/v1/servers HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {BODY_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, s.read_to_end(&mut out))
        .await
        .expect("no answer to a whole body")
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 201"), "{text}");
    assert_eq!(health(srv.addr).await.0, 200);
    srv.shutdown.cancel();
    tokio::time::timeout(DEADLINE, srv.task)
        .await
        .unwrap()
        .unwrap();
}
