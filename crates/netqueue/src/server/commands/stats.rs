//! STATS: the broker's per-queue counts plus the server's own counters, as JSON.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{err, Handled};
use crate::protocol::{ErrorCode, Reply};
use crate::server::shared::Shared;

pub(super) fn stats(shared: &Shared) -> Result<Handled, Reply> {
    let mut stats = shared.lock().broker.stats();
    let s = &mut stats.server;
    s.uptime_ms = shared.started.elapsed().as_millis() as u64;
    s.connections = shared.connections.load(Ordering::Relaxed);
    s.connections_total = shared.connections_total.load(Ordering::Relaxed);
    s.subscribers = shared.pubsub.subscribers.load(Ordering::Relaxed);
    s.events_published_total = shared.pubsub.published.load(Ordering::Relaxed);
    s.events_dropped_total = shared.pubsub.dropped.load(Ordering::Relaxed);
    s.log_bytes = shared.log_bytes.load(Ordering::Relaxed);
    s.storage_failed = shared.storage_failed();
    s.pending_records = shared.lock().pending.len() as u64;
    s.durable_records = shared.durable.as_ref().map_or(0, |d| d.borrow().lsn);
    let json = serde_json::to_vec(&stats)
        .map_err(|e| err(ErrorCode::Other("internal".into()), e.to_string()))?;
    Ok(Handled::Now(Reply::Stats(Bytes::from(json))))
}
