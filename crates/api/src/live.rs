//! Live job events, fanned out per job: the one task that reads the queue's
//! pub/sub (`background`) hands every event to `Hub::dispatch`, which sends
//! it to the subscribers of that job only (and status payloads to `/events`).
//! A job's channel is made by its first subscriber and removed with its last.
//! `StreamSlots` counts the open streams, per token and in all.

use bytes::Bytes;
use remora_domain::events::{JobEvent, OutputEvent, TOPIC_OUTPUT_PREFIX, TOPIC_STATUS};
use remora_netqueue::Event;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// What one pub/sub event says about one job.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Status(JobEvent),
    Output(OutputEvent),
}

/// The job an event concerns and what it says; `None` for other topics and
/// payloads that do not decode. The one place that reads event payloads.
pub fn decode(ev: &Event) -> Option<(String, Update)> {
    if ev.topic == TOPIC_STATUS {
        let s: JobEvent = serde_json::from_slice(&ev.payload).ok()?;
        return Some((s.job_id.clone(), Update::Status(s)));
    }
    let id = ev.topic.strip_prefix(TOPIC_OUTPUT_PREFIX)?;
    let o: OutputEvent = serde_json::from_slice(&ev.payload).ok()?;
    Some((id.to_string(), Update::Output(o)))
}

/// Job id → the channel of that job's watchers.
pub struct Hub {
    jobs: Mutex<HashMap<String, broadcast::Sender<Update>>>,
    /// Events buffered per watched job before a slow subscriber lags (and
    /// then catches up from the database).
    per_job: usize,
    /// Every status payload, as published, for `/events`.
    statuses: broadcast::Sender<Bytes>,
}

impl Hub {
    /// Buffers of `per_job` events per watched job and of `statuses` status
    /// events for `/events` (both at least 1).
    pub fn new(per_job: usize, statuses: usize) -> Hub {
        Hub {
            jobs: Mutex::new(HashMap::new()),
            per_job: per_job.max(1),
            statuses: broadcast::channel(statuses.max(1)).0,
        }
    }

    fn jobs(&self) -> MutexGuard<'_, HashMap<String, broadcast::Sender<Update>>> {
        // A panic while holding the lock leaves the map consistent.
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watch one job's events from now on.
    pub fn subscribe(self: &Arc<Self>, job_id: &str) -> Subscription {
        let rx = self
            .jobs()
            .entry(job_id.to_string())
            .or_insert_with(|| broadcast::channel(self.per_job).0)
            .subscribe();
        Subscription {
            rx,
            job_id: job_id.to_string(),
            hub: self.clone(),
        }
    }

    /// Every status payload from now on, as published.
    pub fn statuses(&self) -> broadcast::Receiver<Bytes> {
        self.statuses.subscribe()
    }

    /// Hand one pub/sub event to whoever watches its job.
    pub fn dispatch(&self, ev: &Event) {
        if ev.topic == TOPIC_STATUS {
            let _ = self.statuses.send(ev.payload.clone());
        }
        let Some((id, update)) = decode(ev) else {
            return;
        };
        if let Some(tx) = self.jobs().get(&id) {
            let _ = tx.send(update);
        }
    }

    /// Jobs with at least one watcher.
    pub fn watched(&self) -> usize {
        self.jobs().len()
    }
}

/// One watcher of one job; dropping the last removes the job's channel.
pub struct Subscription {
    rx: broadcast::Receiver<Update>,
    job_id: String,
    hub: Arc<Hub>,
}

impl Subscription {
    pub async fn recv(&mut self) -> Result<Update, broadcast::error::RecvError> {
        self.rx.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Under the lock no one subscribes meanwhile; our own receiver
        // still counts, so 1 means we are the last.
        let mut jobs = self.hub.jobs();
        if jobs
            .get(&self.job_id)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            jobs.remove(&self.job_id);
        }
    }
}

/// The open SSE streams, per token and in all, under their caps
/// (`REMORA_SSE_MAX_PER_TOKEN`, `REMORA_SSE_MAX_TOTAL`).
pub struct StreamSlots {
    max_per_token: usize,
    max_total: usize,
    open: Mutex<OpenStreams>,
}

#[derive(Default)]
struct OpenStreams {
    total: usize,
    per_token: HashMap<String, usize>,
}

/// Why a stream was refused: the cap that is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotsFull {
    Token(usize),
    Total(usize),
}

impl StreamSlots {
    /// At most `max_per_token` open streams per token and `max_total` in all (both at least 1).
    pub fn new(max_per_token: usize, max_total: usize) -> StreamSlots {
        StreamSlots {
            max_per_token: max_per_token.max(1),
            max_total: max_total.max(1),
            open: Mutex::new(OpenStreams::default()),
        }
    }

    fn open(&self) -> MutexGuard<'_, OpenStreams> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One more open stream of `token`, released when the slot drops; refused at a cap.
    pub fn acquire(self: &Arc<Self>, token: &str) -> Result<StreamSlot, SlotsFull> {
        let mut open = self.open();
        // The token's own cap first: it is the one its holder can act on.
        let n = open.per_token.get(token).copied().unwrap_or(0);
        if n >= self.max_per_token {
            return Err(SlotsFull::Token(self.max_per_token));
        }
        if open.total >= self.max_total {
            return Err(SlotsFull::Total(self.max_total));
        }
        open.total += 1;
        open.per_token.insert(token.to_string(), n + 1);
        Ok(StreamSlot {
            slots: self.clone(),
            token: token.to_string(),
        })
    }

    /// Open streams in all.
    pub fn total(&self) -> usize {
        self.open().total
    }

    /// Open streams of one token.
    pub fn of(&self, token: &str) -> usize {
        self.open().per_token.get(token).copied().unwrap_or(0)
    }
}

/// One open stream; dropped with the stream's body (the client went away or the stream ended).
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    token: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_token.get_mut(&self.token) {
            *n -= 1;
            if *n == 0 {
                open.per_token.remove(&self.token);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use remora_domain::{JobStatus, Stream};

    fn status(job: &str, status: JobStatus) -> Event {
        let ev = JobEvent {
            job_id: job.into(),
            status,
            exit_code: None,
        };
        Event {
            topic: TOPIC_STATUS.into(),
            payload: serde_json::to_vec(&ev).unwrap().into(),
        }
    }

    fn output(job: &str, data: &str) -> Event {
        let ev = OutputEvent {
            job_id: job.into(),
            stream: Stream::Stdout,
            offset: 0,
            len: data.len() as i64,
            data: data.into(),
        };
        Event {
            topic: format!("{TOPIC_OUTPUT_PREFIX}{job}"),
            payload: serde_json::to_vec(&ev).unwrap().into(),
        }
    }

    #[tokio::test]
    async fn a_watcher_sees_its_job_only_and_the_last_one_removes_the_channel() {
        let hub = Arc::new(Hub::new(16, 16));
        let mut a1 = hub.subscribe("a");
        let mut a2 = hub.subscribe("a");
        let mut b = hub.subscribe("b");
        assert_eq!(hub.watched(), 2);
        hub.dispatch(&output("b", "for b"));
        hub.dispatch(&status("a", JobStatus::Running));
        hub.dispatch(&output("a", "for a"));
        for s in [&mut a1, &mut a2] {
            assert!(
                matches!(s.recv().await, Ok(Update::Status(e)) if e.status == JobStatus::Running)
            );
            assert!(matches!(s.recv().await, Ok(Update::Output(o)) if o.data == "for a"));
        }
        assert!(matches!(b.recv().await, Ok(Update::Output(o)) if o.data == "for b"));
        assert!(b.rx.try_recv().is_err(), "b got a's events");
        drop(a1);
        assert_eq!(hub.watched(), 2, "a still has a watcher");
        drop(a2);
        assert_eq!(hub.watched(), 1);
        drop(b);
        assert_eq!(hub.watched(), 0);
        // Events of unwatched jobs go nowhere and create nothing.
        hub.dispatch(&output("c", "x"));
        assert_eq!(hub.watched(), 0);
    }

    #[tokio::test]
    async fn status_payloads_reach_events_as_published() {
        let hub = Hub::new(16, 16);
        let mut all = hub.statuses();
        let ev = status("a", JobStatus::Completed);
        hub.dispatch(&ev);
        hub.dispatch(&output("a", "not a status"));
        assert_eq!(all.recv().await.unwrap(), ev.payload);
        assert!(all.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_watcher_past_its_buffer_is_told_it_lagged() {
        let hub = Arc::new(Hub::new(2, 2));
        let mut a = hub.subscribe("a");
        for d in ["1", "2", "3"] {
            hub.dispatch(&output("a", d));
        }
        assert!(matches!(
            a.recv().await,
            Err(broadcast::error::RecvError::Lagged(1))
        ));
        assert!(matches!(a.recv().await, Ok(Update::Output(o)) if o.data == "2"));
    }

    #[test]
    fn decode_reads_status_and_output_and_skips_the_rest() {
        let (id, u) = decode(&output("j1", "hi")).unwrap();
        assert_eq!(id, "j1");
        assert!(matches!(u, Update::Output(o) if o.data == "hi"));
        let (id, u) = decode(&status("j2", JobStatus::Failed)).unwrap();
        assert_eq!(id, "j2");
        assert!(matches!(u, Update::Status(e) if e.status == JobStatus::Failed));
        let other = Event {
            topic: "cancel".into(),
            payload: Bytes::from_static(b"j3"),
        };
        assert!(decode(&other).is_none());
        let garbage = Event {
            topic: TOPIC_STATUS.into(),
            payload: Bytes::from_static(b"{"),
        };
        assert!(decode(&garbage).is_none());
    }

    #[test]
    fn stream_slots_cap_per_token_and_in_all_and_free_on_drop() {
        let slots = Arc::new(StreamSlots::new(2, 3));
        let a1 = slots.acquire("a").unwrap();
        let _a2 = slots.acquire("a").unwrap();
        assert_eq!(slots.acquire("a").err(), Some(SlotsFull::Token(2)));
        let _b1 = slots.acquire("b").unwrap();
        assert_eq!(slots.acquire("c").err(), Some(SlotsFull::Total(3)));
        assert_eq!((slots.total(), slots.of("a"), slots.of("b")), (3, 2, 1));
        drop(a1);
        assert_eq!((slots.total(), slots.of("a")), (2, 1));
        let _a3 = slots.acquire("a").unwrap();
        assert_eq!(slots.acquire("b").err(), Some(SlotsFull::Total(3)));
    }
}
