//! Request dispatch after the handshake: decode a body, validate it and run it against the broker
//! or pub/sub. One module per command group: `messages` (PUSH, CANCEL), `leases` (RESERVE, ACK,
//! NACK, TOUCH, and RELEASE of affinity keys), `pubsub` (PUBLISH, SUBSCRIBE), `stats` (STATS).

mod leases;
mod messages;
mod pubsub;
mod stats;

#[cfg(test)]
mod fuzz;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::shared::Shared;
use crate::protocol::{
    decode_request, ErrorCode, Event, Reply, Request, RequestError, MAX_NAME_LEN,
};
use crate::queue::BrokerError;

pub(super) type ReplyFuture = Pin<Box<dyn Future<Output = (u64, Reply)> + Send>>;

/// What the connection does with one request.
pub(super) enum Action {
    Reply(u64, Reply),
    Later(ReplyFuture),
}

/// A handler's result: a reply now, or one that has to wait (long-poll, durability).
enum Handled {
    Now(Reply),
    Later(Pin<Box<dyn Future<Output = Reply> + Send>>),
}

/// Per-connection context for dispatch.
pub(super) struct Conn {
    pub(super) id: u64,
    events: mpsc::Sender<Event>,
    /// Topics this connection subscribed to, unsubscribed when it ends.
    pub(super) topics: Vec<String>,
    /// Consumer names this connection reserved as (RESERVE_AS), detached when it ends.
    pub(super) consumers: Vec<String>,
}

impl Conn {
    pub(super) fn new(id: u64, events: mpsc::Sender<Event>) -> Self {
        Self {
            id,
            events,
            topics: Vec::new(),
            consumers: Vec::new(),
        }
    }
}

pub(super) fn dispatch(shared: &Arc<Shared>, conn: &mut Conn, body: Bytes) -> Action {
    let (rid, req) = match decode_request(body) {
        Ok(x) => x,
        Err((rid, RequestError::UnknownCommand(op))) => {
            return Action::Reply(
                rid.unwrap_or(0),
                err(
                    ErrorCode::UnknownCommand,
                    format!("unknown command 0x{op:02x}"),
                ),
            )
        }
        Err((rid, RequestError::Malformed(e))) => {
            return Action::Reply(rid.unwrap_or(0), bad(e.to_string()));
        }
    };
    match handle_request(shared, conn, req) {
        Ok(Handled::Now(reply)) => Action::Reply(rid, reply),
        Ok(Handled::Later(fut)) => Action::Later(Box::pin(async move { (rid, fut.await) })),
        Err(reply) => Action::Reply(rid, reply),
    }
}

fn handle_request(shared: &Arc<Shared>, conn: &mut Conn, req: Request) -> Result<Handled, Reply> {
    match req {
        Request::Hello { .. } => Ok(Handled::Now(bad("HELLO is only valid as the first frame"))),
        Request::Ping => Ok(Handled::Now(Reply::Ok)),
        Request::Push {
            queue,
            id,
            priority,
            delay_ms,
            payload,
            affinity,
        } => messages::push(shared, queue, id, priority, delay_ms, payload, affinity),
        Request::Cancel { queue, id } => Ok(messages::cancel(shared, &queue, &id)),
        Request::Reserve {
            queues,
            max,
            wait_ms,
            lease_ms,
            consumer,
        } => {
            if !consumer.is_empty() {
                check_name("consumer", &consumer)?;
                if !conn.consumers.contains(&consumer) {
                    if conn.consumers.len() >= MAX_CONSUMERS_PER_CONNECTION {
                        return Err(bad(format!(
                            "at most {MAX_CONSUMERS_PER_CONNECTION} consumer names per connection"
                        )));
                    }
                    shared.with_broker(|b, _| b.consumer_attach(&consumer));
                    conn.consumers.push(consumer.clone());
                }
            }
            leases::reserve(shared, queues, consumer, max, wait_ms, lease_ms)
        }
        Request::Release {
            consumer,
            all,
            keys,
        } => leases::release(shared, &consumer, all, &keys),
        Request::Ack {
            queue,
            id,
            lease_id,
        } => leases::ack(shared, &queue, &id, lease_id),
        Request::Nack {
            queue,
            id,
            lease_id,
            delay_ms,
        } => leases::nack(shared, &queue, &id, lease_id, delay_ms),
        Request::Touch {
            queue,
            id,
            lease_id,
            lease_ms,
        } => leases::touch(shared, &queue, &id, lease_id, lease_ms),
        Request::Stats => stats::stats(shared),
        Request::Publish { topic, payload } => pubsub::publish(shared, topic, payload),
        Request::Subscribe { topics } => pubsub::subscribe(shared, conn, topics),
    }
}

/// Consumer names one connection may reserve as.
const MAX_CONSUMERS_PER_CONNECTION: usize = 16;

pub(super) fn err(code: ErrorCode, message: impl Into<String>) -> Reply {
    Reply::Error {
        code,
        message: message.into(),
    }
}

pub(super) fn bad(message: impl Into<String>) -> Reply {
    err(ErrorCode::BadRequest, message)
}

fn check_name(what: &str, s: &str) -> Result<(), Reply> {
    if s.is_empty() || s.len() > MAX_NAME_LEN {
        Err(bad(format!("{what} must be 1..={MAX_NAME_LEN} bytes")))
    } else {
        Ok(())
    }
}

/// A client-given duration, refused above the server's `max_lease`.
fn limit_duration(shared: &Shared, what: &str, ms: u64) -> Result<Duration, Reply> {
    let d = Duration::from_millis(ms);
    if d > shared.config.max_lease {
        Err(bad(format!(
            "{what} exceeds the server maximum of {} ms",
            shared.config.max_lease.as_millis()
        )))
    } else {
        Ok(d)
    }
}

fn broker_err(e: BrokerError) -> Reply {
    let code = match e {
        BrokerError::QueueFull { .. } => ErrorCode::QueueFull,
        BrokerError::UnknownLease { .. } => ErrorCode::UnknownLease,
    };
    err(code, e.to_string())
}

/// Runs one raw request body through decoding and dispatch, as a connection would after the
/// handshake. For fuzzing/property tests: must never panic.
#[cfg(test)]
fn dispatch_for_test(shared: &Arc<Shared>, body: Bytes) -> Option<(u64, Reply)> {
    let (tx, _rx) = mpsc::channel(4);
    let mut conn = Conn::new(1, tx);
    match dispatch(shared, &mut conn, body) {
        Action::Reply(r, x) => Some((r, x)),
        Action::Later(_) => None,
    }
}
