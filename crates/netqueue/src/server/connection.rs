//! One connection: the handshake (HELLO within the timeout and the small pre-handshake frame
//! limit, version and token checked), then a
//! handler that `select!`s between shutdown, finished replies, pub/sub events and the next request
//! frame, with at most `max_inflight` requests in progress and one flush per burst of replies.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tracing::{debug, instrument};

use super::commands::{self, bad, err, Action, Conn, ReplyFuture};
use super::shared::Shared;
use crate::protocol::{
    codec, decode_request, encode_reply, ErrorCode, Event, Reply, Request, PROTOCOL_VERSION,
};

#[instrument(skip_all, fields(conn = conn_id, %peer))]
pub(super) async fn handle(
    shared: &Arc<Shared>,
    socket: TcpStream,
    conn_id: u64,
    peer: std::net::SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let max_frame = shared.config.max_frame;
    // Before HELLO only a small frame is accepted, so an unauthenticated connection cannot make
    // the server reserve `max_frame` bytes.
    let hello_max = shared.config.max_hello_frame.clamp(64, max_frame.max(64));
    let (rd, wr) = socket.into_split();
    let mut reader = FramedRead::new(rd, codec(hello_max));
    let mut writer = FramedWrite::new(wr, codec(usize::MAX >> 1));

    let first = tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        f = tokio::time::timeout(shared.config.handshake_timeout, reader.next()) => f,
    };
    let body = match first {
        Err(_) => {
            debug!("handshake timed out");
            return Ok(());
        }
        Ok(None) => return Ok(()),
        Ok(Some(Err(e))) => {
            writer
                .send(encode_reply(0, &frame_error_reply(&e, hello_max)))
                .await?;
            return Ok(());
        }
        Ok(Some(Ok(b))) => b.freeze(),
    };
    match handshake(shared, body) {
        Ok((rid, reply)) => {
            writer.send(encode_reply(rid, &reply)).await?;
            reader.decoder_mut().set_max_frame_length(max_frame);
        }
        Err((rid, reply)) => {
            debug!(?reply, "handshake refused");
            writer.send(encode_reply(rid, &reply)).await?;
            return Ok(());
        }
    }

    let (events_tx, mut events_rx) = mpsc::channel(shared.config.subscriber_buffer.max(1));
    let mut conn = Conn::new(conn_id, events_tx);
    let result = serve(
        shared,
        &mut conn,
        &mut reader,
        &mut writer,
        &mut events_rx,
        &shutdown,
    )
    .await;
    shared.pubsub.unsubscribe_all(conn.id, &conn.topics);
    // A consumer whose last connection closed holds no warm connections as far as the queue
    // can tell: its affinity keys go at once.
    for c in std::mem::take(&mut conn.consumers) {
        shared.with_broker(|b, _| b.consumer_detach(&c));
    }
    result
}

async fn serve(
    shared: &Arc<Shared>,
    conn: &mut Conn,
    reader: &mut FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
    writer: &mut FramedWrite<OwnedWriteHalf, LengthDelimitedCodec>,
    events: &mut mpsc::Receiver<Event>,
    shutdown: &CancellationToken,
) -> std::io::Result<()> {
    let max_frame = shared.config.max_frame;
    let max_inflight = shared.config.max_inflight.max(1);
    let mut pending: FuturesUnordered<ReplyFuture> = FuturesUnordered::new();
    let mut dirty = false;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                let _ = writer.send(encode_reply(0, &err(ErrorCode::ShuttingDown, "server is shutting down"))).await;
                return Ok(());
            }
            Some((rid, reply)) = pending.next(), if !pending.is_empty() => {
                writer.feed(encode_reply(rid, &reply)).await?;
                dirty = true;
            }
            Some(ev) = events.recv() => {
                writer.feed(encode_reply(0, &Reply::Event(ev))).await?;
                dirty = true;
            }
            frame = reader.next(), if pending.len() < max_inflight => {
                let body = match frame {
                    None => return Ok(()),
                    Some(Err(e)) => {
                        // The stream cannot be resynchronised after a bad length: reply and close.
                        let _ = writer.send(encode_reply(0, &frame_error_reply(&e, max_frame))).await;
                        return Ok(());
                    }
                    Some(Ok(b)) => b.freeze(),
                };
                match commands::dispatch(shared, conn, body) {
                    Action::Reply(rid, reply) => {
                        writer.feed(encode_reply(rid, &reply)).await?;
                        dirty = true;
                    }
                    Action::Later(fut) => pending.push(fut),
                }
            }
            // Only reached when nothing else is ready: one flush per burst of replies.
            res = SinkExt::<Bytes>::flush(writer), if dirty => {
                res?;
                dirty = false;
            }
        }
    }
}

/// Checks the first frame: HELLO with a supported version and the right token.
fn handshake(shared: &Shared, body: Bytes) -> Result<(u64, Reply), (u64, Reply)> {
    match decode_request(body) {
        Ok((rid, Request::Hello { version, token })) => {
            if version != PROTOCOL_VERSION {
                return Err((
                    rid,
                    err(
                        ErrorCode::UnsupportedVersion,
                        format!("server speaks protocol version {PROTOCOL_VERSION}"),
                    ),
                ));
            }
            if let Some(expected) = &shared.config.token {
                if !constant_time_eq(expected.as_bytes(), token.as_bytes()) {
                    return Err((rid, err(ErrorCode::Unauthorized, "invalid token")));
                }
            }
            Ok((
                rid,
                Reply::HelloOk {
                    version: PROTOCOL_VERSION,
                },
            ))
        }
        Ok((rid, _)) | Err((Some(rid), _)) => Err((
            rid,
            err(ErrorCode::HandshakeRequired, "first frame must be HELLO"),
        )),
        Err((None, _)) => Err((
            0,
            err(ErrorCode::HandshakeRequired, "first frame must be HELLO"),
        )),
    }
}

fn frame_error_reply(e: &std::io::Error, max: usize) -> Reply {
    // LengthDelimitedCodec reports an oversized length prefix as InvalidData before reading it.
    if e.kind() == std::io::ErrorKind::InvalidData {
        err(
            ErrorCode::FrameTooLarge,
            format!("frame exceeds the maximum of {max} bytes"),
        )
    } else {
        bad(e.to_string())
    }
}

/// Compares tokens without an early exit, so timing does not tell how much of a guess matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
