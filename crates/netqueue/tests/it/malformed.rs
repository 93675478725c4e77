//! Raw bytes on a socket: the server answers or closes that connection only, and keeps serving.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use remora_netqueue::protocol::{decode_reply, encode_request, Reply, Request};
use remora_netqueue::{ErrorCode, ServerConfig, PROTOCOL_VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestServer;

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

pub(crate) fn hello(token: &str) -> Vec<u8> {
    frame(&encode_request(
        1,
        &Request::Hello {
            version: PROTOCOL_VERSION,
            token: token.into(),
        },
    ))
}

/// Reads one reply frame, or None if the server closed the connection.
pub(crate) async fn read_reply(s: &mut TcpStream) -> Option<(u64, Reply)> {
    let read = async {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).await.ok()?;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut body).await.ok()?;
        Some(decode_reply(Bytes::from(body)).expect("server replies decode"))
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("server answers or closes in time")
}

pub(crate) async fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

async fn open(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&hello("")).await.unwrap();
    assert!(matches!(
        read_reply(&mut s).await,
        Some((1, Reply::HelloOk { .. }))
    ));
    s
}

pub(crate) fn error_code(r: Option<(u64, Reply)>) -> (u64, ErrorCode) {
    match r {
        Some((id, Reply::Error { code, .. })) => (id, code),
        other => panic!("expected an error reply, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_input_suite() {
    let srv = TestServer::start(ServerConfig {
        max_frame: 4096,
        token: None,
        ..ServerConfig::default()
    })
    .await;
    let healthy = srv.client().await;

    // Zero-length frame: bad request, connection stays usable.
    let mut s = open(&srv.addr).await;
    s.write_all(&frame(&[])).await.unwrap();
    assert_eq!(
        error_code(read_reply(&mut s).await).1,
        ErrorCode::BadRequest
    );
    s.write_all(&frame(&encode_request(7, &Request::Ping)))
        .await
        .unwrap();
    assert_eq!(read_reply(&mut s).await, Some((7, Reply::Ok)));

    // Unknown command: error quoting the request id.
    let mut body = BytesMut::new();
    body.put_u8(0x55);
    body.put_u64(99);
    s.write_all(&frame(&body)).await.unwrap();
    assert_eq!(
        error_code(read_reply(&mut s).await),
        (99, ErrorCode::UnknownCommand)
    );

    // Bad encoding: a PUSH whose payload length runs past the frame, and invalid UTF-8.
    let mut body = BytesMut::new();
    body.put_u8(0x02);
    body.put_u64(5);
    body.put_u16(1);
    body.put_slice(b"q");
    body.put_u16(1);
    body.put_slice(b"i");
    body.put_u8(5);
    body.put_u64(0);
    body.put_u32(1_000_000);
    body.put_slice(b"short");
    s.write_all(&frame(&body)).await.unwrap();
    assert_eq!(
        error_code(read_reply(&mut s).await),
        (5, ErrorCode::BadRequest)
    );
    let mut body = BytesMut::new();
    body.put_u8(0x07);
    body.put_u64(6);
    body.put_u16(2);
    body.put_slice(&[0xff, 0xfe]);
    body.put_u16(1);
    body.put_slice(b"x");
    s.write_all(&frame(&body)).await.unwrap();
    assert_eq!(
        error_code(read_reply(&mut s).await),
        (6, ErrorCode::BadRequest)
    );
    // A second HELLO is refused, and the connection still works.
    s.write_all(&hello("")).await.unwrap();
    assert_eq!(
        error_code(read_reply(&mut s).await).1,
        ErrorCode::BadRequest
    );
    s.write_all(&frame(&encode_request(8, &Request::Ping)))
        .await
        .unwrap();
    assert_eq!(read_reply(&mut s).await, Some((8, Reply::Ok)));

    // Length over the maximum: frame_too_large, then closed, without the body ever being sent.
    let mut s = open(&srv.addr).await;
    s.write_all(&(u32::MAX).to_be_bytes()).await.unwrap();
    assert_eq!(
        error_code(read_reply(&mut s).await).1,
        ErrorCode::FrameTooLarge
    );
    assert!(closed(&mut s).await);

    // Truncated body then EOF: the server just closes.
    let mut s = open(&srv.addr).await;
    s.write_all(&100u32.to_be_bytes()).await.unwrap();
    s.write_all(b"abc").await.unwrap();
    s.shutdown().await.unwrap();
    if let Some(r) = read_reply(&mut s).await {
        assert_eq!(error_code(Some(r)).1, ErrorCode::BadRequest);
    }
    assert!(closed(&mut s).await);

    // Garbage instead of a handshake; a request before HELLO; wrong version.
    let mut s = TcpStream::connect(&srv.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let r = read_reply(&mut s).await;
    assert!(r.is_none() || error_code(r).1 == ErrorCode::FrameTooLarge);
    let mut s = TcpStream::connect(&srv.addr).await.unwrap();
    s.write_all(&frame(&encode_request(3, &Request::Ping)))
        .await
        .unwrap();
    assert_eq!(
        error_code(read_reply(&mut s).await),
        (3, ErrorCode::HandshakeRequired)
    );
    assert!(closed(&mut s).await);
    let mut s = TcpStream::connect(&srv.addr).await.unwrap();
    s.write_all(&frame(&encode_request(
        1,
        &Request::Hello {
            version: 999,
            token: String::new(),
        },
    )))
    .await
    .unwrap();
    assert_eq!(
        error_code(read_reply(&mut s).await).1,
        ErrorCode::UnsupportedVersion
    );
    assert!(closed(&mut s).await);

    healthy.ping().await.unwrap();
    srv.stop().await;
}

#[tokio::test]
async fn wrong_token_is_refused_and_closed() {
    let srv = TestServer::start(ServerConfig {
        token: Some("right".into()),
        ..ServerConfig::default()
    })
    .await;
    let mut s = TcpStream::connect(&srv.addr).await.unwrap();
    s.write_all(&hello("wrong")).await.unwrap();
    assert_eq!(
        error_code(read_reply(&mut s).await).1,
        ErrorCode::Unauthorized
    );
    assert!(closed(&mut s).await);
    let mut s = TcpStream::connect(&srv.addr).await.unwrap();
    s.write_all(&hello("right")).await.unwrap();
    assert!(matches!(
        read_reply(&mut s).await,
        Some((_, Reply::HelloOk { .. }))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_connections_opened_and_closed() {
    let srv = TestServer::start(ServerConfig {
        max_connections: 256,
        ..ServerConfig::default()
    })
    .await;
    let healthy = srv.client().await;
    let addr = srv.addr.clone();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..250 {
                let mut s = TcpStream::connect(&addr).await.unwrap();
                match (t + i) % 3 {
                    0 => {}
                    1 => s.write_all(&hello("")).await.unwrap(),
                    _ => s.write_all(&[0, 0, 0]).await.unwrap(),
                }
                drop(s);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    healthy.ping().await.unwrap();
    let c = srv.client().await;
    c.ping().await.unwrap();
    let stats = c.stats().await.unwrap();
    assert!(stats.server.connections_total >= 2002, "{:?}", stats.server);
}
