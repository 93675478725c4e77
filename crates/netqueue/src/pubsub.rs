//! Fire-and-forget topic fan-out between connections. Not durable: an event reaches the
//! subscribers connected when it is published. Each subscriber has a bounded buffer; a subscriber
//! that falls behind loses events (counted) instead of slowing publishers or growing memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::mpsc;

use crate::protocol::Event;

/// Topic that receives every event.
pub const WILDCARD: &str = "*";

type Subscribers = HashMap<String, Vec<(u64, mpsc::Sender<Event>)>>;

#[derive(Default)]
pub struct PubSub {
    topics: Mutex<Subscribers>,
    pub published: AtomicU64,
    pub dropped: AtomicU64,
    pub subscribers: AtomicU64,
}

impl PubSub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Subscribers> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `conn` as a subscriber of `topics` (idempotent per topic).
    pub fn subscribe(&self, conn: u64, topics: &[String], tx: &mpsc::Sender<Event>) {
        let mut map = self.lock();
        for t in topics {
            let subs = map.entry(t.clone()).or_default();
            if !subs.iter().any(|(c, _)| *c == conn) {
                subs.push((conn, tx.clone()));
                self.subscribers.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Removes every subscription of `conn`.
    pub fn unsubscribe_all(&self, conn: u64, topics: &[String]) {
        let mut map = self.lock();
        for t in topics {
            if let Some(subs) = map.get_mut(t) {
                let before = subs.len();
                subs.retain(|(c, _)| *c != conn);
                self.subscribers
                    .fetch_sub((before - subs.len()) as u64, Ordering::Relaxed);
                if subs.is_empty() {
                    map.remove(t);
                }
            }
        }
    }

    /// Delivers to the topic's subscribers and the wildcard's; returns how many received it.
    pub fn publish(&self, event: Event) -> usize {
        self.published.fetch_add(1, Ordering::Relaxed);
        let map = self.lock();
        let mut delivered = 0;
        let named = map.get(&event.topic).into_iter().flatten();
        let wild = if event.topic == WILDCARD {
            None
        } else {
            map.get(WILDCARD)
        };
        for (_, tx) in named.chain(wild.into_iter().flatten()) {
            match tx.try_send(event.clone()) {
                Ok(()) => delivered += 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn ev(t: &str) -> Event {
        Event {
            topic: t.into(),
            payload: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn topic_and_wildcard_delivery_and_overflow_counting() {
        let ps = PubSub::default();
        let (tx1, mut rx1) = mpsc::channel(1);
        let (tx2, mut rx2) = mpsc::channel(8);
        ps.subscribe(1, &["jobs.1".into()], &tx1);
        ps.subscribe(2, &[WILDCARD.into()], &tx2);
        assert_eq!(ps.publish(ev("jobs.1")), 2);
        assert_eq!(ps.publish(ev("jobs.2")), 1);
        assert_eq!(ps.publish(ev("jobs.1")), 1, "subscriber 1 is full");
        assert_eq!(ps.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(rx1.try_recv().unwrap().topic, "jobs.1");
        assert!(rx1.try_recv().is_err());
        let got: Vec<_> = std::iter::from_fn(|| rx2.try_recv().ok())
            .map(|e| e.topic)
            .collect();
        assert_eq!(got, ["jobs.1", "jobs.2", "jobs.1"]);
        ps.unsubscribe_all(1, &["jobs.1".into()]);
        assert_eq!(ps.publish(ev("jobs.1")), 1);
        assert_eq!(ps.subscribers.load(Ordering::Relaxed), 1);
    }
}
