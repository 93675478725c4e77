//! The NetQueue wire protocol: the framing codec both ends use (a u32 big-endian length before
//! each body), typed requests and replies and their body encoding; see
//! `docs/netqueue-protocol.md` for the normative description.

use std::fmt;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::LengthDelimitedCodec;

use crate::wire::{DecodeError, Reader, WriteExt};

/// Protocol version spoken by this build. Bumped on any incompatible change.
pub const PROTOCOL_VERSION: u16 = 1;
/// Default cap on one frame body (both directions for requests; replies are capped by the server).
pub const DEFAULT_MAX_FRAME: usize = 1024 * 1024;
/// Longest queue name, message id or topic, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// Most queues one RESERVE may name.
pub const MAX_RESERVE_QUEUES: usize = 32;
/// Most affinity keys one RELEASE may name.
pub const MAX_RELEASE_KEYS: usize = 4096;
/// Most topics one SUBSCRIBE may name.
pub const MAX_TOPICS: usize = 256;
/// Lowest and highest priority.
pub const MIN_PRIORITY: u8 = 1;
pub const MAX_PRIORITY: u8 = 10;

/// The framing: a `u32` big-endian length, then the body. A length over `max_frame` is refused
/// (as `io::ErrorKind::InvalidData`) before the body is read or allocated.
pub(crate) fn codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_type::<u32>()
        .max_frame_length(max_frame)
        .new_codec()
}

mod op {
    pub const HELLO: u8 = 0x01;
    pub const PUSH: u8 = 0x02;
    pub const RESERVE: u8 = 0x03;
    pub const ACK: u8 = 0x04;
    pub const NACK: u8 = 0x05;
    pub const TOUCH: u8 = 0x06;
    pub const CANCEL: u8 = 0x07;
    pub const STATS: u8 = 0x08;
    pub const PING: u8 = 0x09;
    pub const PUBLISH: u8 = 0x0a;
    pub const SUBSCRIBE: u8 = 0x0b;
    pub const PUSH_KEYED: u8 = 0x0c;
    pub const RESERVE_AS: u8 = 0x0d;
    pub const RELEASE: u8 = 0x0e;

    pub const OK: u8 = 0x80;
    pub const HELLO_OK: u8 = 0x81;
    pub const PUSHED: u8 = 0x82;
    pub const DELIVERIES: u8 = 0x83;
    pub const CANCELED: u8 = 0x84;
    pub const STATS_REPLY: u8 = 0x85;
    pub const EVENT: u8 = 0x86;
    pub const ERROR: u8 = 0xff;
}

/// A request from client to server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Hello {
        version: u16,
        token: String,
    },
    /// Encoded as PUSH, or as PUSH_KEYED when `affinity` is not empty.
    Push {
        queue: String,
        id: String,
        priority: u8,
        delay_ms: u64,
        payload: Bytes,
        /// Affinity key (Remora: the server id); empty = none.
        affinity: String,
    },
    /// Encoded as RESERVE, or as RESERVE_AS when `consumer` is not empty.
    Reserve {
        queues: Vec<String>,
        max: u32,
        wait_ms: u64,
        lease_ms: u64,
        /// Who reserves (Remora: the worker id), for affinity; empty = anonymous.
        consumer: String,
    },
    /// `consumer` no longer holds these affinity keys (or, with `all`, any).
    Release {
        consumer: String,
        all: bool,
        keys: Vec<String>,
    },
    Ack {
        queue: String,
        id: String,
        lease_id: u64,
    },
    Nack {
        queue: String,
        id: String,
        lease_id: u64,
        delay_ms: u64,
    },
    Touch {
        queue: String,
        id: String,
        lease_id: u64,
        lease_ms: u64,
    },
    Cancel {
        queue: String,
        id: String,
    },
    Stats,
    Ping,
    Publish {
        topic: String,
        payload: Bytes,
    },
    Subscribe {
        topics: Vec<String>,
    },
}

/// One message handed out by RESERVE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub queue: String,
    pub id: String,
    pub priority: u8,
    pub payload: Bytes,
    /// 1 on first delivery, +1 on every redelivery (lease expiry or NACK).
    pub attempt: u32,
    /// Names this lease: ACK/NACK/TOUCH must quote it; a stale one is refused with `unknown_lease`.
    pub lease_id: u64,
}

/// Whether a PUSH queued a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Queued,
    /// A message with this id is already queued, delayed or leased in this queue; nothing was added.
    Duplicate,
}

/// A pub/sub event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub topic: String,
    pub payload: Bytes,
}

/// A reply (or server-initiated event) from server to client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok,
    HelloOk {
        version: u16,
    },
    Pushed(PushOutcome),
    Deliveries(Vec<Delivery>),
    Canceled(bool),
    /// STATS as JSON (see [`crate::Stats`]) so fields can be added without a version bump.
    Stats(Bytes),
    Event(Event),
    Error {
        code: ErrorCode,
        message: String,
    },
}

/// Stable error codes carried by error replies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    HandshakeRequired,
    UnsupportedVersion,
    UnknownCommand,
    QueueFull,
    UnknownLease,
    FrameTooLarge,
    StorageError,
    ShuttingDown,
    /// A code this build does not know (from a newer server).
    Other(String),
}

impl ErrorCode {
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::HandshakeRequired => "handshake_required",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::UnknownLease => "unknown_lease",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::StorageError => "storage_error",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> ErrorCode {
        match s {
            "bad_request" => ErrorCode::BadRequest,
            "unauthorized" => ErrorCode::Unauthorized,
            "handshake_required" => ErrorCode::HandshakeRequired,
            "unsupported_version" => ErrorCode::UnsupportedVersion,
            "unknown_command" => ErrorCode::UnknownCommand,
            "queue_full" => ErrorCode::QueueFull,
            "unknown_lease" => ErrorCode::UnknownLease,
            "frame_too_large" => ErrorCode::FrameTooLarge,
            "storage_error" => ErrorCode::StorageError,
            "shutting_down" => ErrorCode::ShuttingDown,
            other => ErrorCode::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request body was refused: either undecodable, or decodable but an unknown opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    Malformed(DecodeError),
    UnknownCommand(u8),
}

impl From<DecodeError> for RequestError {
    fn from(e: DecodeError) -> Self {
        RequestError::Malformed(e)
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Saturating conversion for durations given by clients.
pub fn duration_ms(d: Duration) -> u64 {
    ms(d)
}

/// Encodes a request body: opcode, request id, fields.
pub fn encode_request(id: u64, req: &Request) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    match req {
        Request::Hello { version, token } => {
            b.put_u8(op::HELLO);
            b.put_u64(id);
            b.put_u16(*version);
            b.put_str(token);
        }
        Request::Push {
            queue,
            id: mid,
            priority,
            delay_ms,
            payload,
            affinity,
        } => {
            b.reserve(payload.len() + queue.len() + mid.len() + affinity.len() + 32);
            b.put_u8(if affinity.is_empty() {
                op::PUSH
            } else {
                op::PUSH_KEYED
            });
            b.put_u64(id);
            b.put_str(queue);
            b.put_str(mid);
            b.put_u8(*priority);
            b.put_u64(*delay_ms);
            b.put_blob(payload);
            if !affinity.is_empty() {
                b.put_str(affinity);
            }
        }
        Request::Reserve {
            queues,
            max,
            wait_ms,
            lease_ms,
            consumer,
        } => {
            if consumer.is_empty() {
                b.put_u8(op::RESERVE);
                b.put_u64(id);
            } else {
                b.put_u8(op::RESERVE_AS);
                b.put_u64(id);
                b.put_str(consumer);
            }
            b.put_u8(queues.len().min(255) as u8);
            for q in queues.iter().take(255) {
                b.put_str(q);
            }
            b.put_u32(*max);
            b.put_u64(*wait_ms);
            b.put_u64(*lease_ms);
        }
        Request::Release {
            consumer,
            all,
            keys,
        } => {
            b.put_u8(op::RELEASE);
            b.put_u64(id);
            b.put_str(consumer);
            b.put_u8(u8::from(*all));
            b.put_u16(keys.len().min(usize::from(u16::MAX)) as u16);
            for k in keys.iter().take(usize::from(u16::MAX)) {
                b.put_str(k);
            }
        }
        Request::Ack {
            queue,
            id: mid,
            lease_id,
        } => {
            b.put_u8(op::ACK);
            b.put_u64(id);
            b.put_str(queue);
            b.put_str(mid);
            b.put_u64(*lease_id);
        }
        Request::Nack {
            queue,
            id: mid,
            lease_id,
            delay_ms,
        } => {
            b.put_u8(op::NACK);
            b.put_u64(id);
            b.put_str(queue);
            b.put_str(mid);
            b.put_u64(*lease_id);
            b.put_u64(*delay_ms);
        }
        Request::Touch {
            queue,
            id: mid,
            lease_id,
            lease_ms,
        } => {
            b.put_u8(op::TOUCH);
            b.put_u64(id);
            b.put_str(queue);
            b.put_str(mid);
            b.put_u64(*lease_id);
            b.put_u64(*lease_ms);
        }
        Request::Cancel { queue, id: mid } => {
            b.put_u8(op::CANCEL);
            b.put_u64(id);
            b.put_str(queue);
            b.put_str(mid);
        }
        Request::Stats => {
            b.put_u8(op::STATS);
            b.put_u64(id);
        }
        Request::Ping => {
            b.put_u8(op::PING);
            b.put_u64(id);
        }
        Request::Publish { topic, payload } => {
            b.reserve(payload.len() + topic.len() + 16);
            b.put_u8(op::PUBLISH);
            b.put_u64(id);
            b.put_str(topic);
            b.put_blob(payload);
        }
        Request::Subscribe { topics } => {
            b.put_u8(op::SUBSCRIBE);
            b.put_u64(id);
            b.put_u16(topics.len().min(usize::from(u16::MAX)) as u16);
            for t in topics.iter().take(usize::from(u16::MAX)) {
                b.put_str(t);
            }
        }
    }
    b.freeze()
}

/// Decodes a request body into its request id and request. The id is returned even when the rest
/// fails to decode (as `Err((Some(id), _))`) so the error reply can quote it.
pub fn decode_request(body: Bytes) -> Result<(u64, Request), (Option<u64>, RequestError)> {
    let mut r = Reader::new(body);
    let opcode = r.u8().map_err(|e| (None, e.into()))?;
    let id = r.u64().map_err(|e| (None, e.into()))?;
    decode_request_fields(opcode, &mut r)
        .and_then(|req| r.finish().map(|()| req).map_err(RequestError::from))
        .map(|req| (id, req))
        .map_err(|e| (Some(id), e))
}

fn decode_request_fields(opcode: u8, r: &mut Reader) -> Result<Request, RequestError> {
    Ok(match opcode {
        op::HELLO => Request::Hello {
            version: r.u16()?,
            token: r.str()?,
        },
        op::PUSH | op::PUSH_KEYED => Request::Push {
            queue: r.str()?,
            id: r.str()?,
            priority: r.u8()?,
            delay_ms: r.u64()?,
            payload: r.bytes()?,
            affinity: if opcode == op::PUSH_KEYED {
                r.str()?
            } else {
                String::new()
            },
        },
        op::RESERVE | op::RESERVE_AS => {
            let consumer = if opcode == op::RESERVE_AS {
                r.str()?
            } else {
                String::new()
            };
            let n = r.u8()?;
            let mut queues = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                queues.push(r.str()?);
            }
            Request::Reserve {
                queues,
                max: r.u32()?,
                wait_ms: r.u64()?,
                lease_ms: r.u64()?,
                consumer,
            }
        }
        op::RELEASE => {
            let consumer = r.str()?;
            let all = r.u8()? != 0;
            let n = r.u16()?;
            // Each key takes at least 2 bytes, so this bounds the allocation by the frame size.
            let mut keys = Vec::with_capacity(usize::from(n).min(MAX_RELEASE_KEYS));
            for _ in 0..n {
                keys.push(r.str()?);
            }
            Request::Release {
                consumer,
                all,
                keys,
            }
        }
        op::ACK => Request::Ack {
            queue: r.str()?,
            id: r.str()?,
            lease_id: r.u64()?,
        },
        op::NACK => Request::Nack {
            queue: r.str()?,
            id: r.str()?,
            lease_id: r.u64()?,
            delay_ms: r.u64()?,
        },
        op::TOUCH => Request::Touch {
            queue: r.str()?,
            id: r.str()?,
            lease_id: r.u64()?,
            lease_ms: r.u64()?,
        },
        op::CANCEL => Request::Cancel {
            queue: r.str()?,
            id: r.str()?,
        },
        op::STATS => Request::Stats,
        op::PING => Request::Ping,
        op::PUBLISH => Request::Publish {
            topic: r.str()?,
            payload: r.bytes()?,
        },
        op::SUBSCRIBE => {
            let n = r.u16()?;
            // Each topic takes at least 2 bytes, so this bounds the allocation by the frame size.
            let mut topics = Vec::with_capacity(usize::from(n).min(MAX_TOPICS));
            for _ in 0..n {
                topics.push(r.str()?);
            }
            Request::Subscribe { topics }
        }
        other => return Err(RequestError::UnknownCommand(other)),
    })
}

/// Exact encoded size of one delivery inside a DELIVERIES reply, for reply-size capping.
pub fn delivery_encoded_len(d: &Delivery) -> usize {
    2 + d.queue.len() + 2 + d.id.len() + 1 + 4 + 8 + 4 + d.payload.len()
}

/// Encodes a reply body: opcode, request id (0 for events), fields.
pub fn encode_reply(id: u64, reply: &Reply) -> Bytes {
    let mut b = BytesMut::with_capacity(32);
    match reply {
        Reply::Ok => {
            b.put_u8(op::OK);
            b.put_u64(id);
        }
        Reply::HelloOk { version } => {
            b.put_u8(op::HELLO_OK);
            b.put_u64(id);
            b.put_u16(*version);
        }
        Reply::Pushed(outcome) => {
            b.put_u8(op::PUSHED);
            b.put_u64(id);
            b.put_u8(match outcome {
                PushOutcome::Queued => 0,
                PushOutcome::Duplicate => 1,
            });
        }
        Reply::Deliveries(ds) => {
            b.reserve(ds.iter().map(delivery_encoded_len).sum::<usize>() + 16);
            b.put_u8(op::DELIVERIES);
            b.put_u64(id);
            b.put_u32(ds.len() as u32);
            for d in ds {
                b.put_str(&d.queue);
                b.put_str(&d.id);
                b.put_u8(d.priority);
                b.put_u32(d.attempt);
                b.put_u64(d.lease_id);
                b.put_blob(&d.payload);
            }
        }
        Reply::Canceled(yes) => {
            b.put_u8(op::CANCELED);
            b.put_u64(id);
            b.put_u8(u8::from(*yes));
        }
        Reply::Stats(json) => {
            b.put_u8(op::STATS_REPLY);
            b.put_u64(id);
            b.put_blob(json);
        }
        Reply::Event(ev) => {
            b.reserve(ev.payload.len() + ev.topic.len() + 16);
            b.put_u8(op::EVENT);
            b.put_u64(id);
            b.put_str(&ev.topic);
            b.put_blob(&ev.payload);
        }
        Reply::Error { code, message } => {
            b.put_u8(op::ERROR);
            b.put_u64(id);
            b.put_str(code.as_str());
            b.put_str(message);
        }
    }
    b.freeze()
}

/// Decodes a reply body into its request id and reply.
pub fn decode_reply(body: Bytes) -> Result<(u64, Reply), DecodeError> {
    let mut r = Reader::new(body);
    let opcode = r.u8()?;
    let id = r.u64()?;
    let reply = match opcode {
        op::OK => Reply::Ok,
        op::HELLO_OK => Reply::HelloOk { version: r.u16()? },
        op::PUSHED => Reply::Pushed(match r.u8()? {
            0 => PushOutcome::Queued,
            1 => PushOutcome::Duplicate,
            _ => return Err(DecodeError("bad push outcome")),
        }),
        op::DELIVERIES => {
            let n = r.u32()?;
            // Each delivery takes at least 21 bytes; never trust n for the allocation.
            let mut ds = Vec::with_capacity((n as usize).min(1024));
            for _ in 0..n {
                ds.push(Delivery {
                    queue: r.str()?,
                    id: r.str()?,
                    priority: r.u8()?,
                    attempt: r.u32()?,
                    lease_id: r.u64()?,
                    payload: r.bytes()?,
                });
            }
            Reply::Deliveries(ds)
        }
        op::CANCELED => Reply::Canceled(r.u8()? != 0),
        op::STATS_REPLY => Reply::Stats(r.bytes()?),
        op::EVENT => Reply::Event(Event {
            topic: r.str()?,
            payload: r.bytes()?,
        }),
        op::ERROR => Reply::Error {
            code: ErrorCode::parse(&r.str()?),
            message: r.str()?,
        },
        _ => return Err(DecodeError("unknown reply opcode")),
    };
    r.finish()?;
    Ok((id, reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_requests() -> Vec<Request> {
        vec![
            Request::Hello {
                version: 1,
                token: "t".into(),
            },
            Request::Push {
                queue: "q".into(),
                id: "j1".into(),
                priority: 10,
                delay_ms: 5,
                payload: Bytes::from_static(b"xyz"),
                affinity: String::new(),
            },
            Request::Push {
                queue: "q".into(),
                id: "j2".into(),
                priority: 1,
                delay_ms: 0,
                payload: Bytes::from_static(b"xyz"),
                affinity: "server-1".into(),
            },
            Request::Reserve {
                queues: vec!["a".into(), "b".into()],
                max: 3,
                wait_ms: 100,
                lease_ms: 30_000,
                consumer: String::new(),
            },
            Request::Reserve {
                queues: vec!["a".into()],
                max: 1,
                wait_ms: 100,
                lease_ms: 30_000,
                consumer: "worker-1".into(),
            },
            Request::Release {
                consumer: "worker-1".into(),
                all: false,
                keys: vec!["s1".into(), "s2".into()],
            },
            Request::Release {
                consumer: "worker-1".into(),
                all: true,
                keys: vec![],
            },
            Request::Ack {
                queue: "q".into(),
                id: "j".into(),
                lease_id: 9,
            },
            Request::Nack {
                queue: "q".into(),
                id: "j".into(),
                lease_id: 9,
                delay_ms: 1,
            },
            Request::Touch {
                queue: "q".into(),
                id: "j".into(),
                lease_id: 9,
                lease_ms: 2,
            },
            Request::Cancel {
                queue: "q".into(),
                id: "j".into(),
            },
            Request::Stats,
            Request::Ping,
            Request::Publish {
                topic: "t".into(),
                payload: Bytes::from_static(b"p"),
            },
            Request::Subscribe {
                topics: vec!["*".into()],
            },
        ]
    }

    #[test]
    fn requests_roundtrip_and_every_truncation_fails() {
        for (i, req) in all_requests().into_iter().enumerate() {
            let body = encode_request(i as u64 + 1, &req);
            assert_eq!(
                decode_request(body.clone()),
                Ok((i as u64 + 1, req.clone()))
            );
            for cut in 0..body.len() {
                assert!(
                    decode_request(body.slice(..cut)).is_err(),
                    "{req:?} cut at {cut}"
                );
            }
            let mut longer = BytesMut::from(&body[..]);
            longer.put_u8(0);
            assert!(decode_request(longer.freeze()).is_err());
        }
    }

    #[test]
    fn replies_roundtrip() {
        let replies = vec![
            Reply::Ok,
            Reply::HelloOk { version: 1 },
            Reply::Pushed(PushOutcome::Duplicate),
            Reply::Deliveries(vec![Delivery {
                queue: "q".into(),
                id: "i".into(),
                priority: 3,
                payload: Bytes::from_static(b"abc"),
                attempt: 2,
                lease_id: 77,
            }]),
            Reply::Canceled(true),
            Reply::Stats(Bytes::from_static(b"{}")),
            Reply::Event(Event {
                topic: "t".into(),
                payload: Bytes::from_static(b"x"),
            }),
            Reply::Error {
                code: ErrorCode::QueueFull,
                message: "full".into(),
            },
            Reply::Error {
                code: ErrorCode::Other("future_code".into()),
                message: String::new(),
            },
        ];
        for r in replies {
            let body = encode_reply(5, &r);
            assert_eq!(decode_reply(body.clone()), Ok((5, r.clone())));
            if let Reply::Deliveries(ds) = &r {
                assert_eq!(
                    body.len(),
                    1 + 8 + 4 + ds.iter().map(delivery_encoded_len).sum::<usize>()
                );
            }
        }
    }

    #[test]
    fn unknown_opcode_keeps_request_id() {
        let mut b = BytesMut::new();
        b.put_u8(0x7e);
        b.put_u64(31);
        assert_eq!(
            decode_request(b.freeze()),
            Err((Some(31), RequestError::UnknownCommand(0x7e)))
        );
    }
}
