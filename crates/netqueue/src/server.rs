//! The NetQueue server: accept loop with a connection cap, one handler task per connection, a timer
//! task that ends leases and delays, and (with a data directory) a log writer thread that does all
//! file I/O so fsync never blocks a connection task.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, instrument, warn};

pub use crate::log::FsyncPolicy;
use crate::log::{Clock, Log, LogOptions};
use crate::protocol::{
    decode_request, encode_reply, ErrorCode, Event, Reply, Request, RequestError,
    DEFAULT_MAX_FRAME, MAX_NAME_LEN, MAX_PRIORITY, MAX_RESERVE_QUEUES, MAX_TOPICS, MIN_PRIORITY,
    PROTOCOL_VERSION,
};
use crate::pubsub::PubSub;
use crate::queue::{Broker, BrokerError, Limits, Record};

/// Server settings. Tests build this directly; the binary fills it from flags and env vars.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the log lives; `None` keeps everything in memory (nothing survives a restart).
    pub data_dir: Option<PathBuf>,
    /// Shared secret every client must present in HELLO; `None` disables auth.
    pub token: Option<String>,
    /// Largest frame body accepted, checked before the body is read.
    pub max_frame: usize,
    pub fsync: FsyncPolicy,
    /// Deliveries after which a message is dead-lettered; 0 = unlimited.
    pub max_attempts: u32,
    pub max_queue_messages: usize,
    pub max_queue_bytes: usize,
    pub max_dead_letters: usize,
    /// Concurrent connections; further ones wait in the accept backlog.
    pub max_connections: usize,
    /// Requests one connection may have in progress (e.g. long-polls, pushes awaiting fsync).
    pub max_inflight: usize,
    /// Longest lease or delay a client may ask for.
    pub max_lease: Duration,
    /// Time a new connection has to complete the handshake.
    pub handshake_timeout: Duration,
    /// Events buffered per subscribed connection before new ones are dropped for it.
    pub subscriber_buffer: usize,
    pub segment_bytes: u64,
    pub compact_min_bytes: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            data_dir: None,
            token: None,
            max_frame: DEFAULT_MAX_FRAME,
            fsync: FsyncPolicy::Always,
            max_attempts: limits.max_attempts,
            max_queue_messages: limits.max_queue_messages,
            max_queue_bytes: limits.max_queue_bytes,
            max_dead_letters: limits.max_dead_letters,
            max_connections: 4096,
            max_inflight: 1024,
            max_lease: Duration::from_secs(24 * 3600),
            handshake_timeout: Duration::from_secs(10),
            subscriber_buffer: 4096,
            segment_bytes: 64 * 1024 * 1024,
            compact_min_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("opening the queue log in {dir}: {source}")]
    OpenLog {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("queue log writer failed: {0}")]
    Log(String),
    #[error("accepting connections: {0}")]
    Accept(std::io::Error),
}

/// How far the log writer got: records durable under the fsync policy, and whether it failed.
#[derive(Debug, Clone, Copy, Default)]
struct Durable {
    lsn: u64,
    failed: bool,
}

/// State behind the broker lock.
struct Core {
    broker: Broker,
    /// Records not yet handed to the log writer, and the count of records ever journaled.
    pending: Vec<Record>,
    appended: u64,
    /// The deadline the timer task currently sleeps until.
    armed: Option<Instant>,
    stopping: bool,
}

pub(crate) struct Shared {
    core: Mutex<Core>,
    /// Wakes the log writer thread.
    log_cv: Condvar,
    /// Wakes long-polling RESERVEs when messages become ready.
    ready: Notify,
    /// Wakes the timer task when an earlier deadline appears.
    timers: Notify,
    durable: Option<watch::Receiver<Durable>>,
    pubsub: PubSub,
    config: ServerConfig,
    started: Instant,
    connections: AtomicU64,
    connections_total: AtomicU64,
    log_bytes: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one broker operation, hands its journal to the log writer and wakes whoever must react.
    /// Returns the operation's result and the journal position it must be durable up to.
    fn with_broker<R>(&self, f: impl FnOnce(&mut Broker, Instant) -> R) -> (R, u64) {
        let now = Instant::now();
        let mut core = self.lock();
        let r = f(&mut core.broker, now);
        let records = core.broker.take_journal();
        let mut wake_log = false;
        if !records.is_empty() && self.durable.is_some() {
            core.appended += records.len() as u64;
            core.pending.extend(records);
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

    /// Resolves once everything journaled up to `lsn` is durable under the fsync policy.
    async fn durable(&self, lsn: u64) -> Result<(), ErrorCode> {
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

/// Serves NetQueue on `listener` until `shutdown` is cancelled.
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let limits = Limits {
        max_attempts: config.max_attempts,
        max_queue_messages: config.max_queue_messages,
        max_queue_bytes: config.max_queue_bytes,
        max_dead_letters: config.max_dead_letters,
    };
    let journaling = config.data_dir.is_some();
    let mut broker = Broker::new(limits, random_u64() >> 1, journaling);

    let mut log = None;
    if let Some(dir) = &config.data_dir {
        let opts = LogOptions {
            fsync: config.fsync,
            segment_bytes: config.segment_bytes.max(4096),
            compact_min_bytes: config.compact_min_bytes,
        };
        let dir2 = dir.clone();
        let (l, report, b) = tokio::task::spawn_blocking(move || {
            let r = Log::open(&dir2, opts, &mut broker);
            r.map(|(l, rep)| (l, rep, broker))
        })
        .await
        .map_err(|e| ServerError::Log(e.to_string()))?
        .map_err(|source| ServerError::OpenLog {
            dir: dir.clone(),
            source,
        })?;
        broker = b;
        info!(dir = %dir.display(), segments = report.segments, records = report.records,
              truncated_bytes = report.truncated_bytes, "queue log replayed");
        log = Some(l);
    }

    let (durable_tx, durable_rx) = watch::channel(Durable::default());
    let shared = Arc::new(Shared {
        core: Mutex::new(Core {
            broker,
            pending: Vec::new(),
            appended: 0,
            armed: None,
            stopping: false,
        }),
        log_cv: Condvar::new(),
        ready: Notify::new(),
        timers: Notify::new(),
        durable: log.is_some().then_some(durable_rx),
        pubsub: PubSub::default(),
        config: config.clone(),
        started: Instant::now(),
        connections: AtomicU64::new(0),
        connections_total: AtomicU64::new(0),
        log_bytes: AtomicU64::new(0),
    });

    let writer = log.map(|log| {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("netqueue-log".into())
            .spawn(move || log_writer(shared, log, durable_tx))
            .expect("spawning the log writer thread")
    });

    let tracker = TaskTracker::new();
    tracker.spawn(timer_task(shared.clone(), shutdown.clone()));
    info!(addr = ?listener.local_addr().ok(), "netqueue listening");
    let result = accept_loop(&listener, &shared, &tracker, &shutdown).await;
    shutdown.cancel();
    tracker.close();
    tracker.wait().await;

    if let Some(handle) = writer {
        shared.lock().stopping = true;
        shared.log_cv.notify_one();
        let joined = tokio::task::spawn_blocking(move || handle.join()).await;
        match joined {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(ServerError::Log(e.to_string())),
            _ => return Err(ServerError::Log("log writer panicked".into())),
        }
    }
    result
}

async fn accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<(), ServerError> {
    let permits = Arc::new(Semaphore::new(shared.config.max_connections.max(1)));
    let mut next_conn = 0u64;
    let mut backoff = Duration::from_millis(1);
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            p = permits.clone().acquire_owned() => p.expect("semaphore is never closed"),
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            a = listener.accept() => a,
        };
        let (socket, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(1);
                a
            }
            Err(e) => {
                // Usually EMFILE or a connection reset before accept: back off and keep serving.
                warn!(error = %e, "accept failed");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        next_conn += 1;
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        let conn = next_conn;
        tracker.spawn(async move {
            shared.connections.fetch_add(1, Ordering::Relaxed);
            shared.connections_total.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = handle_connection(&shared, socket, conn, peer, shutdown).await {
                debug!(conn, error = %e, "connection ended with error");
            }
            shared.connections.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

/// Ends leases and delays exactly when due. Sleeps until the earliest deadline, or until an
/// operation creates an earlier one.
async fn timer_task(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        let ((), _) = shared.with_broker(|b, now| {
            b.expire(now);
        });
        let next = {
            let mut core = shared.lock();
            let next = core.broker.next_deadline();
            core.armed = next;
            next
        };
        let sleep = async {
            match next {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = sleep => {}
            _ = shared.timers.notified() => {}
        }
    }
}

/// The log writer thread: takes batches of records, writes them, fsyncs per policy and publishes
/// how far the log is durable. Everything queued while one fsync runs is committed by the next:
/// that is the group commit.
fn log_writer(
    shared: Arc<Shared>,
    mut log: Log,
    durable: watch::Sender<Durable>,
) -> std::io::Result<()> {
    let policy = log.options().fsync;
    let mut last_sync = std::time::Instant::now();
    let mut buf = BytesMut::with_capacity(1 << 20);
    let mut durable_lsn = 0u64;
    let fail = |e: std::io::Error| {
        warn!(error = %e, "queue log write failed; refusing further pushes");
        durable.send_modify(|d| d.failed = true);
        e
    };
    loop {
        let (batch, lsn, snapshot) = {
            let mut core = shared.lock();
            loop {
                if !core.pending.is_empty() || core.stopping {
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
            let snapshot = log
                .wants_compaction(core.broker.live_bytes())
                .then(|| core.broker.snapshot());
            (batch, lsn, snapshot)
        };

        if let Some(snapshot) = snapshot {
            // The snapshot already contains the effect of every record in `batch`.
            log.compact(&snapshot).map_err(fail)?;
            last_sync = std::time::Instant::now();
            debug!(
                records = snapshot.len(),
                bytes = log.total_len(),
                "queue log compacted"
            );
        } else if !batch.is_empty() {
            let clock = Clock::now();
            buf.clear();
            for r in &batch {
                crate::log::encode_record(&mut buf, r, clock);
            }
            log.append(&buf).map_err(fail)?;
            if buf.capacity() > 8 << 20 {
                buf = BytesMut::with_capacity(1 << 20);
            }
        }
        let sync_now = match policy {
            FsyncPolicy::Always => true,
            FsyncPolicy::Interval(every) => last_sync.elapsed() >= every,
            FsyncPolicy::Never => false,
        };
        if sync_now || (shared.lock().stopping && policy != FsyncPolicy::Never) {
            log.sync().map_err(fail)?;
            last_sync = std::time::Instant::now();
        }
        shared.log_bytes.store(log.total_len(), Ordering::Relaxed);
        if lsn > durable_lsn {
            durable_lsn = lsn;
            durable.send_modify(|d| d.lsn = lsn);
        }
        let core = shared.lock();
        if core.stopping && core.pending.is_empty() {
            drop(core);
            log.sync()?;
            return Ok(());
        }
    }
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

type ReplyFuture = Pin<Box<dyn Future<Output = (u64, Reply)> + Send>>;

/// What the handler does with one request.
enum Action {
    Reply(u64, Reply),
    Later(ReplyFuture),
}

fn err(code: ErrorCode, message: impl Into<String>) -> Reply {
    Reply::Error {
        code,
        message: message.into(),
    }
}

fn bad(message: impl Into<String>) -> Reply {
    err(ErrorCode::BadRequest, message)
}

fn check_name(what: &str, s: &str) -> Result<(), Reply> {
    if s.is_empty() || s.len() > MAX_NAME_LEN {
        Err(bad(format!("{what} must be 1..={MAX_NAME_LEN} bytes")))
    } else {
        Ok(())
    }
}

fn broker_err(e: BrokerError) -> Reply {
    let code = match e {
        BrokerError::QueueFull { .. } => ErrorCode::QueueFull,
        BrokerError::UnknownLease { .. } => ErrorCode::UnknownLease,
    };
    err(code, e.to_string())
}

/// Per-connection context for dispatch.
pub(crate) struct Conn {
    id: u64,
    events: mpsc::Sender<Event>,
    topics: Vec<String>,
}

fn dispatch(shared: &Arc<Shared>, conn: &mut Conn, body: Bytes) -> Action {
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

enum Handled {
    Now(Reply),
    Later(Pin<Box<dyn Future<Output = Reply> + Send>>),
}

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

fn handle_request(shared: &Arc<Shared>, conn: &mut Conn, req: Request) -> Result<Handled, Reply> {
    Ok(match req {
        Request::Hello { .. } => Handled::Now(bad("HELLO is only valid as the first frame")),
        Request::Ping => Handled::Now(Reply::Ok),
        Request::Push {
            queue,
            id,
            priority,
            delay_ms,
            payload,
        } => {
            check_name("queue", &queue)?;
            check_name("id", &id)?;
            if !(MIN_PRIORITY..=MAX_PRIORITY).contains(&priority) {
                return Err(bad(format!(
                    "priority must be {MIN_PRIORITY}..={MAX_PRIORITY}"
                )));
            }
            let delay = limit_duration(shared, "delay", delay_ms)?;
            let (res, lsn) =
                shared.with_broker(|b, now| b.push(&queue, &id, priority, payload, delay, now));
            let outcome = res.map_err(broker_err)?;
            if shared.durable.is_none() {
                Handled::Now(Reply::Pushed(outcome))
            } else {
                // Duplicates wait too: the original may not be durable yet.
                let shared = shared.clone();
                Handled::Later(Box::pin(async move {
                    match shared.durable(lsn).await {
                        Ok(()) => Reply::Pushed(outcome),
                        Err(code) => err(code, "the queue log could not be written"),
                    }
                }))
            }
        }
        Request::Reserve {
            queues,
            max,
            wait_ms,
            lease_ms,
        } => {
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
            let max = max.min(10_000);
            let budget = shared.config.max_frame;
            let shared = shared.clone();
            let deadline = Instant::now() + wait;
            Handled::Later(Box::pin(async move {
                loop {
                    // Register interest before looking, so a push between the look and the wait
                    // still wakes us.
                    let notified = shared.ready.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    let (ds, _) =
                        shared.with_broker(|b, now| b.reserve(&queues, max, lease, budget, now));
                    if !ds.is_empty() {
                        return Reply::Deliveries(ds);
                    }
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        return Reply::Deliveries(Vec::new());
                    }
                }
            }))
        }
        Request::Ack {
            queue,
            id,
            lease_id,
        } => {
            let (res, _) = shared.with_broker(|b, now| b.ack(&queue, &id, lease_id, now));
            res.map_err(broker_err)?;
            Handled::Now(Reply::Ok)
        }
        Request::Nack {
            queue,
            id,
            lease_id,
            delay_ms,
        } => {
            let delay = limit_duration(shared, "delay", delay_ms)?;
            let (res, _) = shared.with_broker(|b, now| b.nack(&queue, &id, lease_id, delay, now));
            res.map_err(broker_err)?;
            Handled::Now(Reply::Ok)
        }
        Request::Touch {
            queue,
            id,
            lease_id,
            lease_ms,
        } => {
            if lease_ms == 0 {
                return Err(bad("lease must be at least 1 ms"));
            }
            let lease = limit_duration(shared, "lease", lease_ms)?;
            let (res, _) = shared.with_broker(|b, now| b.touch(&queue, &id, lease_id, lease, now));
            res.map_err(broker_err)?;
            Handled::Now(Reply::Ok)
        }
        Request::Cancel { queue, id } => {
            let (removed, _) = shared.with_broker(|b, now| b.cancel(&queue, &id, now));
            Handled::Now(Reply::Canceled(removed))
        }
        Request::Stats => {
            let mut stats = shared.lock().broker.stats();
            let s = &mut stats.server;
            s.uptime_ms = shared.started.elapsed().as_millis() as u64;
            s.connections = shared.connections.load(Ordering::Relaxed);
            s.connections_total = shared.connections_total.load(Ordering::Relaxed);
            s.subscribers = shared.pubsub.subscribers.load(Ordering::Relaxed);
            s.events_published_total = shared.pubsub.published.load(Ordering::Relaxed);
            s.events_dropped_total = shared.pubsub.dropped.load(Ordering::Relaxed);
            s.log_bytes = shared.log_bytes.load(Ordering::Relaxed);
            s.durable_records = shared.durable.as_ref().map_or(0, |d| d.borrow().lsn);
            let json = serde_json::to_vec(&stats)
                .map_err(|e| err(ErrorCode::Other("internal".into()), e.to_string()))?;
            Handled::Now(Reply::Stats(Bytes::from(json)))
        }
        Request::Publish { topic, payload } => {
            check_name("topic", &topic)?;
            shared.pubsub.publish(Event { topic, payload });
            Handled::Now(Reply::Ok)
        }
        Request::Subscribe { topics } => {
            if topics.is_empty() || conn.topics.len() + topics.len() > MAX_TOPICS {
                return Err(bad(format!(
                    "a connection may subscribe to 1..={MAX_TOPICS} topics"
                )));
            }
            for t in &topics {
                check_name("topic", t)?;
            }
            shared.pubsub.subscribe(conn.id, &topics, &conn.events);
            for t in topics {
                if !conn.topics.contains(&t) {
                    conn.topics.push(t);
                }
            }
            Handled::Now(Reply::Ok)
        }
    })
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

pub(crate) fn codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_type::<u32>()
        .max_frame_length(max_frame)
        .new_codec()
}

#[instrument(skip_all, fields(conn = conn_id, %peer))]
async fn handle_connection(
    shared: &Arc<Shared>,
    socket: TcpStream,
    conn_id: u64,
    peer: std::net::SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let max_frame = shared.config.max_frame;
    let (rd, wr) = socket.into_split();
    let mut reader = FramedRead::new(rd, codec(max_frame));
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
                .send(encode_reply(0, &frame_error_reply(&e, max_frame)))
                .await?;
            return Ok(());
        }
        Ok(Some(Ok(b))) => b.freeze(),
    };
    match handshake(shared, body) {
        Ok((rid, reply)) => writer.send(encode_reply(rid, &reply)).await?,
        Err((rid, reply)) => {
            debug!(?reply, "handshake refused");
            writer.send(encode_reply(rid, &reply)).await?;
            return Ok(());
        }
    }

    let (events_tx, mut events_rx) = mpsc::channel(shared.config.subscriber_buffer.max(1));
    let mut conn = Conn {
        id: conn_id,
        events: events_tx,
        topics: Vec::new(),
    };
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
    result
}

async fn serve(
    shared: &Arc<Shared>,
    conn: &mut Conn,
    reader: &mut FramedRead<tokio::net::tcp::OwnedReadHalf, LengthDelimitedCodec>,
    writer: &mut FramedWrite<tokio::net::tcp::OwnedWriteHalf, LengthDelimitedCodec>,
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
                match dispatch(shared, conn, body) {
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

/// Sanity: a reply to a request carries the same id; used by tests of the dispatcher.
#[cfg(test)]
pub(crate) fn test_shared(config: ServerConfig) -> Arc<Shared> {
    let limits = Limits {
        max_attempts: config.max_attempts,
        max_queue_messages: config.max_queue_messages,
        max_queue_bytes: config.max_queue_bytes,
        max_dead_letters: config.max_dead_letters,
    };
    Arc::new(Shared {
        core: Mutex::new(Core {
            broker: Broker::new(limits, 1, false),
            pending: Vec::new(),
            appended: 0,
            armed: None,
            stopping: false,
        }),
        log_cv: Condvar::new(),
        ready: Notify::new(),
        timers: Notify::new(),
        durable: None,
        pubsub: PubSub::default(),
        config,
        started: Instant::now(),
        connections: AtomicU64::new(0),
        connections_total: AtomicU64::new(0),
        log_bytes: AtomicU64::new(0),
    })
}

/// Runs one raw request body through decoding and dispatch, as a connection would after the
/// handshake. For fuzzing/property tests: must never panic.
#[cfg(test)]
pub(crate) fn dispatch_for_test(shared: &Arc<Shared>, body: Bytes) -> Option<(u64, Reply)> {
    let (tx, _rx) = mpsc::channel(4);
    let mut conn = Conn {
        id: 1,
        events: tx,
        topics: Vec::new(),
    };
    match dispatch(shared, &mut conn, body) {
        Action::Reply(r, x) => Some((r, x)),
        Action::Later(_) => None,
    }
}

#[cfg(test)]
mod fuzz {
    //! Property tests over decoding and dispatch: no input may panic the server, and every reply
    //! must encode to something a client can decode. Bounded case counts keep `cargo test` fast.
    use super::*;
    use crate::protocol::{decode_reply, encode_request};
    use proptest::prelude::*;

    fn shared() -> Arc<Shared> {
        test_shared(ServerConfig {
            max_queue_messages: 50,
            max_queue_bytes: 4096,
            ..ServerConfig::default()
        })
    }

    fn arb_request() -> impl Strategy<Value = Request> {
        let name = "[a-z*]{0,4}";
        let payload = proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from);
        prop_oneof![
            (any::<u16>(), name).prop_map(|(version, token)| Request::Hello { version, token }),
            (name, name, any::<u8>(), 0u64..5000, payload.clone()).prop_map(
                |(queue, id, priority, delay_ms, payload)| {
                    Request::Push {
                        queue,
                        id,
                        priority,
                        delay_ms,
                        payload,
                    }
                }
            ),
            (
                proptest::collection::vec(name, 0..4),
                any::<u32>(),
                0u64..3,
                any::<u64>()
            )
                .prop_map(|(queues, max, wait_ms, lease_ms)| Request::Reserve {
                    queues,
                    max,
                    wait_ms,
                    lease_ms
                }),
            (name, name, 0u64..20).prop_map(|(queue, id, lease_id)| Request::Ack {
                queue,
                id,
                lease_id
            }),
            (name, name, 0u64..20, any::<u64>()).prop_map(|(queue, id, lease_id, delay_ms)| {
                Request::Nack {
                    queue,
                    id,
                    lease_id,
                    delay_ms,
                }
            }),
            (name, name, 0u64..20, any::<u64>()).prop_map(|(queue, id, lease_id, lease_ms)| {
                Request::Touch {
                    queue,
                    id,
                    lease_id,
                    lease_ms,
                }
            }),
            (name, name).prop_map(|(queue, id)| Request::Cancel { queue, id }),
            Just(Request::Stats),
            Just(Request::Ping),
            (name, payload).prop_map(|(topic, payload)| Request::Publish { topic, payload }),
            proptest::collection::vec(name, 0..4).prop_map(|topics| Request::Subscribe { topics }),
        ]
    }

    /// A valid request body with some bytes overwritten, cut or extended.
    fn arb_mutated() -> impl Strategy<Value = Vec<u8>> {
        (
            arb_request(),
            any::<u64>(),
            proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            0usize..8,
            proptest::collection::vec(any::<u8>(), 0..4),
        )
            .prop_map(|(req, rid, flips, cut, extra)| {
                let mut b = encode_request(rid, &req).to_vec();
                for (i, v) in flips {
                    let n = b.len();
                    b[i.index(n)] = v;
                }
                b.truncate(b.len().saturating_sub(cut));
                b.extend(extra);
                b
            })
    }

    fn check(shared: &Arc<Shared>, body: Vec<u8>) -> Result<(), TestCaseError> {
        if let Some((rid, reply)) = dispatch_for_test(shared, Bytes::from(body)) {
            let decoded = decode_reply(encode_reply(rid, &reply));
            prop_assert_eq!(decoded, Ok((rid, reply)));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 1..8)) {
            let shared = shared();
            for b in bodies {
                check(&shared, b)?;
            }
        }

        #[test]
        fn mutated_requests_never_panic(bodies in proptest::collection::vec(arb_mutated(), 1..16)) {
            let shared = shared();
            for b in bodies {
                check(&shared, b)?;
            }
        }

    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 800, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn valid_request_sequences_keep_broker_consistent(reqs in proptest::collection::vec(arb_request(), 1..40)) {
            let shared = shared();
            for (i, r) in reqs.iter().enumerate() {
                check(&shared, encode_request(i as u64 + 1, r).to_vec())?;
                // Drive reserves synchronously too (dispatch defers them to a future).
                if let Request::Reserve { queues, max, lease_ms, .. } = r {
                    let _ = shared.with_broker(|b, now| {
                        b.reserve(queues, (*max).min(5), Duration::from_millis((*lease_ms).clamp(1, 1 << 40)), 1 << 20, now)
                    });
                }
            }
            let stats = shared.lock().broker.stats();
            for (name, q) in stats.queues {
                prop_assert_eq!(q.total, q.ready + q.leased + q.delayed, "queue {}", name);
                prop_assert_eq!(q.ready, q.ready_by_priority.values().sum::<u64>());
                prop_assert!(q.total <= 50 && q.bytes <= 4096);
            }
        }
    }
}
