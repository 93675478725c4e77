//! Durability: opening (replaying) the queue log, and the log writer thread that does all file
//! I/O so fsync never blocks a connection task. It publishes how far the log is durable; a PUSH
//! reply waits for that (see `Shared::durable`).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::shared::Shared;
use super::{ServerConfig, ServerError};
use crate::backoff::Backoff;
use crate::log::{Clock, FsyncPolicy, Log, LogOptions};
use crate::queue::Broker;

/// How far the log writer got: records durable under the fsync policy, and whether it failed.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Durable {
    pub(super) lsn: u64,
    pub(super) failed: bool,
}

pub(super) fn channel() -> (watch::Sender<Durable>, watch::Receiver<Durable>) {
    watch::channel(Durable::default())
}

/// Opens the log in `dir` and replays it into `broker` (on a blocking thread: replay reads files).
pub(super) async fn open(
    dir: &Path,
    config: &ServerConfig,
    mut broker: Broker,
) -> Result<(Broker, Log), ServerError> {
    let opts = LogOptions {
        fsync: config.fsync,
        segment_bytes: config.segment_bytes.max(4096),
        compact_min_bytes: config.compact_min_bytes,
    };
    let dir2 = dir.to_path_buf();
    let (log, report, broker) = tokio::task::spawn_blocking(move || {
        let r = Log::open(&dir2, opts, &mut broker);
        r.map(|(l, rep)| (l, rep, broker))
    })
    .await
    .map_err(|e| ServerError::Log(e.to_string()))?
    .map_err(|source| ServerError::OpenLog {
        dir: dir.to_path_buf(),
        source,
    })?;
    info!(dir = %dir.display(), segments = report.segments, records = report.records,
          truncated_bytes = report.truncated_bytes, "queue log replayed");
    Ok((broker, log))
}

pub(super) fn spawn_writer(
    shared: Arc<Shared>,
    log: Log,
    durable: watch::Sender<Durable>,
) -> std::thread::JoinHandle<std::io::Result<()>> {
    std::thread::Builder::new()
        .name("netqueue-log".into())
        .spawn(move || log_writer(shared, log, durable))
        .expect("spawning the log writer thread")
}

/// Tells the writer to finish (write and sync what is pending) and waits for it.
pub(super) async fn stop_writer(
    shared: &Shared,
    handle: std::thread::JoinHandle<std::io::Result<()>>,
) -> Result<(), ServerError> {
    shared.lock().stopping = true;
    shared.log_cv.notify_one();
    let joined = tokio::task::spawn_blocking(move || handle.join()).await;
    match joined {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(ServerError::Log(e.to_string())),
        _ => Err(ServerError::Log("log writer panicked".into())),
    }
}

/// The log writer thread: takes batches of records, writes them, fsyncs per policy and publishes
/// how far the log is durable. Everything queued while one fsync runs is committed by the next:
/// that is the group commit.
///
/// A failed write or fsync never ends the thread: the pending records are dropped (so memory stays
/// bounded), PUSH is refused, and the writer retries with backoff (50 ms doubling to 2 s) to write
/// a snapshot of the broker, which replaces the whole log, whatever the failed write left behind.
/// Once one succeeds the queue is durable and accepts pushes again.
fn log_writer(
    shared: Arc<Shared>,
    mut log: Log,
    durable: watch::Sender<Durable>,
) -> std::io::Result<()> {
    let policy = log.options().fsync;
    let mut last_sync = std::time::Instant::now();
    let mut buf = BytesMut::with_capacity(1 << 20);
    let mut durable_lsn = 0u64;
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
    let mut failing = false;
    loop {
        let (batch, lsn, snapshot) = {
            let mut core = shared.lock();
            loop {
                if !core.pending.is_empty() || core.stopping || core.resync {
                    break;
                }
                match policy {
                    FsyncPolicy::Interval(every) if log.is_dirty() => {
                        let due = last_sync + every;
                        let now = std::time::Instant::now();
                        if now >= due {
                            break;
                        }
                        core = shared
                            .log_cv
                            .wait_timeout(core, due - now)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                    _ => core = shared.log_cv.wait(core).unwrap_or_else(|e| e.into_inner()),
                }
            }
            let batch = std::mem::take(&mut core.pending);
            let lsn = core.appended;
            let resync = std::mem::take(&mut core.resync);
            let snapshot = (resync || log.wants_compaction(core.broker.live_bytes()))
                .then(|| core.broker.snapshot());
            (batch, lsn, snapshot)
        };

        match write_round(
            &mut log,
            &shared,
            policy,
            &mut last_sync,
            &mut buf,
            &batch,
            snapshot.as_deref(),
        ) {
            Ok(()) => {
                if failing {
                    failing = false;
                    backoff.reset();
                    shared.storage_failed.store(false, Ordering::Relaxed);
                    durable.send_modify(|d| d.failed = false);
                    info!("queue log writable again; accepting pushes");
                }
                shared.log_bytes.store(log.total_len(), Ordering::Relaxed);
                if lsn > durable_lsn {
                    durable_lsn = lsn;
                    durable.send_modify(|d| d.lsn = lsn);
                }
            }
            Err(e) => {
                let delay = backoff.next_delay();
                // Resync is set before anyone can see the failure: a client told of it must find
                // the journal already dropped (its next changes go to the snapshot, not `pending`).
                let mut core = shared.lock();
                core.pending = Vec::new();
                core.resync = true;
                if !failing {
                    warn!(error = %e, "queue log write failed; refusing pushes and retrying");
                    failing = true;
                    shared.storage_failed.store(true, Ordering::Relaxed);
                    durable.send_modify(|d| d.failed = true);
                } else {
                    debug!(error = %e, ?delay, "queue log still not writable");
                }
                if core.stopping {
                    return Err(e);
                }
                // Woken early only by a stop: every change notifies the writer, and retrying the
                // snapshot on each one would spin on a full disk. New records wait for it.
                let _ = shared
                    .log_cv
                    .wait_timeout_while(core, delay, |c| !c.stopping)
                    .unwrap_or_else(|e| e.into_inner());
                continue;
            }
        }
        let core = shared.lock();
        if core.stopping && core.pending.is_empty() && !core.resync {
            drop(core);
            log.sync()?;
            return Ok(());
        }
    }
}

/// One round of the writer: the snapshot (which already contains the effect of every record in
/// `batch`) or the batch, then an fsync when the policy asks for one.
fn write_round(
    log: &mut Log,
    shared: &Shared,
    policy: FsyncPolicy,
    last_sync: &mut std::time::Instant,
    buf: &mut BytesMut,
    batch: &[crate::queue::Record],
    snapshot: Option<&[crate::queue::Record]>,
) -> std::io::Result<()> {
    if let Some(snapshot) = snapshot {
        log.compact(snapshot)?;
        *last_sync = std::time::Instant::now();
        debug!(
            records = snapshot.len(),
            bytes = log.total_len(),
            "queue log compacted"
        );
    } else if !batch.is_empty() {
        let clock = Clock::now();
        buf.clear();
        for r in batch {
            crate::log::encode_record(buf, r, clock);
        }
        log.append(buf)?;
        if buf.capacity() > 8 << 20 {
            *buf = BytesMut::with_capacity(1 << 20);
        }
    }
    let sync_now = match policy {
        FsyncPolicy::Always => true,
        FsyncPolicy::Interval(every) => last_sync.elapsed() >= every,
        FsyncPolicy::Never => false,
    };
    if sync_now || (shared.lock().stopping && policy != FsyncPolicy::Never) {
        log.sync()?;
        *last_sync = std::time::Instant::now();
    }
    Ok(())
}
