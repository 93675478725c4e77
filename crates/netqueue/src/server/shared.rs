//! The state every server task shares: the broker behind one lock, the journal handed to the log
//! writer, the wake-ups (log writer, long-polls, timer) and the counters STATS reports.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::durability::Durable;
use super::ServerConfig;
use crate::protocol::ErrorCode;
use crate::pubsub::PubSub;
use crate::queue::{Broker, Record};

/// State behind the broker lock.
pub(super) struct Core {
    pub(super) broker: Broker,
    /// Records not yet handed to the log writer, and the count of records ever journaled.
    pub(super) pending: Vec<Record>,
    pub(super) appended: u64,
    /// Set when `pending` was dropped (the writer failed, or more than `max_pending_records`
    /// piled up): the writer's next round writes a snapshot of the broker instead of appending.
    pub(super) resync: bool,
    /// The deadline the timer task currently sleeps until.
    pub(super) armed: Option<Instant>,
    pub(super) stopping: bool,
}

pub(super) struct Shared {
    core: Mutex<Core>,
    /// Wakes the log writer thread.
    pub(super) log_cv: Condvar,
    /// Wakes long-polling RESERVEs when messages become ready.
    pub(super) ready: Notify,
    /// Wakes the timer task when an earlier deadline appears.
    pub(super) timers: Notify,
    /// How far the log is durable; `None` without a data directory.
    pub(super) durable: Option<watch::Receiver<Durable>>,
    pub(super) pubsub: PubSub,
    pub(super) config: ServerConfig,
    pub(super) started: Instant,
    pub(super) connections: AtomicU64,
    pub(super) connections_total: AtomicU64,
    pub(super) log_bytes: AtomicU64,
    /// True from a failed log write until the writer has written a snapshot again.
    pub(super) storage_failed: AtomicBool,
}

impl Shared {
    pub(super) fn new(
        broker: Broker,
        config: ServerConfig,
        durable: Option<watch::Receiver<Durable>>,
    ) -> Self {
        Self {
            core: Mutex::new(Core {
                broker,
                pending: Vec::new(),
                appended: 0,
                resync: false,
                armed: None,
                stopping: false,
            }),
            log_cv: Condvar::new(),
            ready: Notify::new(),
            timers: Notify::new(),
            durable,
            pubsub: PubSub::default(),
            config,
            started: Instant::now(),
            connections: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            log_bytes: AtomicU64::new(0),
            storage_failed: AtomicBool::new(false),
        }
    }

    /// An in-memory server's state, for tests of the dispatcher.
    #[cfg(test)]
    pub(super) fn for_test(config: ServerConfig) -> std::sync::Arc<Self> {
        let broker = Broker::new(config.limits(), 1, false);
        std::sync::Arc::new(Self::new(broker, config, None))
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one broker operation, hands its journal to the log writer and wakes whoever must react.
    /// Returns the operation's result and the journal position it must be durable up to.
    pub(super) fn with_broker<R>(&self, f: impl FnOnce(&mut Broker, Instant) -> R) -> (R, u64) {
        let now = Instant::now();
        let mut core = self.lock();
        let r = f(&mut core.broker, now);
        let records = core.broker.take_journal();
        let mut wake_log = false;
        if !records.is_empty() && self.durable.is_some() {
            core.appended += records.len() as u64;
            // While resyncing, the snapshot the writer takes will include these records' effect.
            if !core.resync {
                core.pending.extend(records);
                if core.pending.len() > self.config.max_pending_records.max(1) {
                    // Bounded memory: the writer is behind (or failing); a snapshot replaces the
                    // backlog, and costs no more than the broker state already held in memory.
                    core.pending = Vec::new();
                    core.resync = true;
                }
            }
            wake_log = true;
        }
        let lsn = core.appended;
        let wake_consumers = core.broker.take_wakeup();
        let next = core.broker.next_deadline();
        let wake_timer = match (next, core.armed) {
            (Some(n), Some(a)) => n < a,
            (Some(_), None) => true,
            _ => false,
        };
        if wake_timer {
            core.armed = next;
        }
        drop(core);
        if wake_log {
            self.log_cv.notify_one();
        }
        if wake_consumers {
            self.ready.notify_waiters();
        }
        if wake_timer {
            self.timers.notify_one();
        }
        (r, lsn)
    }

    /// Whether the log writer is failing (PUSH is refused and `/ready` of the API says not ready).
    pub(super) fn storage_failed(&self) -> bool {
        self.storage_failed.load(Ordering::Relaxed)
    }

    /// Resolves once everything journaled up to `lsn` is durable under the fsync policy.
    pub(super) async fn durable(&self, lsn: u64) -> Result<(), ErrorCode> {
        let Some(rx) = &self.durable else {
            return Ok(());
        };
        let mut rx = rx.clone();
        let ok = match rx.wait_for(|d| d.lsn >= lsn || d.failed).await {
            Ok(d) => d.lsn >= lsn,
            Err(_) => false,
        };
        if ok {
            Ok(())
        } else {
            Err(ErrorCode::StorageError)
        }
    }
}
