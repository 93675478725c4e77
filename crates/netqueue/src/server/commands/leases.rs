//! RESERVE and RESERVE_AS (a long poll woken by `Shared::ready`), the lease operations ACK, NACK
//! and TOUCH, and RELEASE of affinity keys.
//! A NACK gives the lease back without counting against `max_attempts`: only leases that run out
//! dead-letter (see `Broker::nack`).

use std::sync::Arc;

use tokio::time::Instant;

use super::{bad, broker_err, check_name, limit_duration, Handled};
use crate::protocol::{Reply, MAX_RELEASE_KEYS, MAX_RESERVE_QUEUES};
use crate::server::shared::Shared;

/// Most deliveries one RESERVE returns, whatever `max` asks for.
const MAX_DELIVERIES: u32 = 10_000;

pub(super) fn reserve(
    shared: &Arc<Shared>,
    queues: Vec<String>,
    consumer: String,
    max: u32,
    wait_ms: u64,
    lease_ms: u64,
) -> Result<Handled, Reply> {
    if queues.is_empty() || queues.len() > MAX_RESERVE_QUEUES {
        return Err(bad(format!(
            "reserve needs 1..={MAX_RESERVE_QUEUES} queues"
        )));
    }
    for q in &queues {
        check_name("queue", q)?;
    }
    if max == 0 {
        return Err(bad("max must be at least 1"));
    }
    if lease_ms == 0 {
        return Err(bad("lease must be at least 1 ms"));
    }
    let lease = limit_duration(shared, "lease", lease_ms)?;
    let wait = limit_duration(shared, "wait", wait_ms)?;
    let max = max.min(MAX_DELIVERIES);
    let budget = shared.config.max_frame;
    let shared = shared.clone();
    let deadline = Instant::now() + wait;
    Ok(Handled::Later(Box::pin(async move {
        loop {
            // Register interest before looking, so a push between the look and the wait
            // still wakes us.
            let notified = shared.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (ds, _) = shared
                .with_broker(|b, now| b.reserve_as(&queues, &consumer, max, lease, budget, now));
            if !ds.is_empty() {
                return Reply::Deliveries(ds);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Reply::Deliveries(Vec::new());
            }
        }
    })))
}

/// RELEASE: `consumer` dropped its warm connections for `keys` (or, with `all`, for every key).
pub(super) fn release(
    shared: &Shared,
    consumer: &str,
    all: bool,
    keys: &[String],
) -> Result<Handled, Reply> {
    check_name("consumer", consumer)?;
    if keys.len() > MAX_RELEASE_KEYS {
        return Err(bad(format!(
            "release names at most {MAX_RELEASE_KEYS} keys"
        )));
    }
    shared.with_broker(|b, _| {
        if all {
            b.release_all(consumer);
        } else {
            b.release(consumer, keys);
        }
    });
    Ok(Handled::Now(Reply::Ok))
}

pub(super) fn ack(shared: &Shared, queue: &str, id: &str, lease_id: u64) -> Result<Handled, Reply> {
    let (res, _) = shared.with_broker(|b, now| b.ack(queue, id, lease_id, now));
    res.map_err(broker_err)?;
    Ok(Handled::Now(Reply::Ok))
}

pub(super) fn nack(
    shared: &Shared,
    queue: &str,
    id: &str,
    lease_id: u64,
    delay_ms: u64,
) -> Result<Handled, Reply> {
    let delay = limit_duration(shared, "delay", delay_ms)?;
    let (res, _) = shared.with_broker(|b, now| b.nack(queue, id, lease_id, delay, now));
    res.map_err(broker_err)?;
    Ok(Handled::Now(Reply::Ok))
}

pub(super) fn touch(
    shared: &Shared,
    queue: &str,
    id: &str,
    lease_id: u64,
    lease_ms: u64,
) -> Result<Handled, Reply> {
    if lease_ms == 0 {
        return Err(bad("lease must be at least 1 ms"));
    }
    let lease = limit_duration(shared, "lease", lease_ms)?;
    let (res, _) = shared.with_broker(|b, now| b.touch(queue, id, lease_id, lease, now));
    res.map_err(broker_err)?;
    Ok(Handled::Now(Reply::Ok))
}
