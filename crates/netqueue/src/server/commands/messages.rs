//! PUSH and PUSH_KEYED (validate, apply, reply once durable) and CANCEL.

use std::sync::Arc;

use bytes::Bytes;

use super::{bad, broker_err, check_name, err, limit_duration, Handled};
use crate::protocol::{ErrorCode, Reply, MAX_PRIORITY, MIN_PRIORITY};
use crate::server::shared::Shared;

pub(super) fn push(
    shared: &Arc<Shared>,
    queue: String,
    id: String,
    priority: u8,
    delay_ms: u64,
    payload: Bytes,
    affinity: String,
) -> Result<Handled, Reply> {
    check_name("queue", &queue)?;
    check_name("id", &id)?;
    if affinity.len() > crate::protocol::MAX_NAME_LEN {
        return Err(bad(format!(
            "affinity key must be at most {} bytes",
            crate::protocol::MAX_NAME_LEN
        )));
    }
    if !(MIN_PRIORITY..=MAX_PRIORITY).contains(&priority) {
        return Err(bad(format!(
            "priority must be {MIN_PRIORITY}..={MAX_PRIORITY}"
        )));
    }
    let delay = limit_duration(shared, "delay", delay_ms)?;
    if shared.storage_failed() {
        // Refused before it touches the broker: a message that cannot be made durable is not kept.
        return Err(err(
            ErrorCode::StorageError,
            "the queue log cannot be written at the moment; retry later",
        ));
    }
    let (res, lsn) = shared
        .with_broker(|b, now| b.push_keyed(&queue, &id, priority, payload, delay, &affinity, now));
    let outcome = res.map_err(broker_err)?;
    if shared.durable.is_none() {
        return Ok(Handled::Now(Reply::Pushed(outcome)));
    }
    // Duplicates wait too: the original may not be durable yet.
    let shared = shared.clone();
    Ok(Handled::Later(Box::pin(async move {
        match shared.durable(lsn).await {
            Ok(()) => Reply::Pushed(outcome),
            Err(code) => err(code, "the queue log could not be written"),
        }
    })))
}

/// Removes a queued or delayed message; a leased one is left to its worker.
pub(super) fn cancel(shared: &Shared, queue: &str, id: &str) -> Handled {
    let (removed, _) = shared.with_broker(|b, now| b.cancel(queue, id, now));
    Handled::Now(Reply::Canceled(removed))
}
