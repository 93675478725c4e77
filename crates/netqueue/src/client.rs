//! The NetQueue client used by the API and the workers: one multiplexed connection per [`Client`]
//! (cheap to clone), pipelined requests matched to replies by request id, per-request timeouts,
//! keepalive pings, and automatic reconnection with capped exponential backoff over a list of
//! queue addresses (failover to a standby queue; see [`failover_order`]). Subscriptions use a
//! connection of their own and re-subscribe after a reconnect.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::codec::Framed;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::protocol::{
    codec, decode_reply, duration_ms, encode_request, ErrorCode, Reply, Request, MAX_PRIORITY,
    MIN_PRIORITY, PROTOCOL_VERSION,
};
pub use crate::protocol::{Delivery, Event, PushOutcome};
use crate::queue::Stats;

/// Errors from client calls.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to queue server at {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The server refused the request; `code` is stable (`queue_full`, `unauthorized`, ...).
    #[error("queue server error {code}: {message}")]
    Server { code: ErrorCode, message: String },
    #[error("queue request timed out after {0:?}")]
    Timeout(Duration),
    /// The connection dropped after the request was sent: it may or may not have been applied.
    #[error("connection to the queue server was lost before the reply")]
    Disconnected,
    /// Not connected (the client keeps reconnecting in the background).
    #[error("queue server unavailable: {0}")]
    Unavailable(String),
    #[error("queue protocol error: {0}")]
    Protocol(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl ClientError {
    /// The server's error code, if this is a server error reply.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            ClientError::Server { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::Timeout(_)
            | ClientError::Disconnected
            | ClientError::Unavailable(_) => true,
            ClientError::Server { code, .. } => {
                matches!(
                    code,
                    ErrorCode::QueueFull | ErrorCode::ShuttingDown | ErrorCode::StorageError
                )
            }
            _ => false,
        }
    }
}

/// A message to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub queue: String,
    /// Idempotency key: while a message with this id is queued, delayed or leased in this queue, a
    /// second push of it is not queued (the reply is `Duplicate`).
    pub id: String,
    /// 1..=10, higher first; FIFO within a priority.
    pub priority: u8,
    pub payload: Bytes,
    /// Not deliverable before this much time has passed.
    pub delay: Duration,
    /// Affinity key (empty = none): the queue prefers handing the message to the consumer that
    /// last took one with the same key (see [`Client::reserve_as`]).
    pub affinity: String,
}

impl Push {
    /// A push with priority 5 and no delay.
    pub fn new(queue: impl Into<String>, id: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Self {
            queue: queue.into(),
            id: id.into(),
            priority: 5,
            payload: payload.into(),
            delay: Duration::ZERO,
            affinity: String::new(),
        }
    }

    /// Sets the affinity key (Remora: the server id).
    pub fn affinity(mut self, key: impl Into<String>) -> Self {
        self.affinity = key.into();
        self
    }

    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// Default [`ClientConfig::ping_timeout`].
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Most queue addresses one client takes.
pub const MAX_ADDRS: usize = 16;

/// Parses a queue address list: `host:port`, or several separated by commas
/// (`a:9000,b:9001`), the preferred first. Blanks around entries are ignored; an empty entry, a
/// missing or bad port, a duplicate or more than [`MAX_ADDRS`] entries is an error naming it.
pub fn parse_addrs(list: &str) -> Result<Vec<String>, ClientError> {
    let mut out: Vec<String> = Vec::new();
    for raw in list.split(',') {
        let a = raw.trim();
        if a.is_empty() {
            return Err(ClientError::InvalidArgument(format!(
                "queue address list {list:?} has an empty entry (give host:port, comma-separated)"
            )));
        }
        let port_ok = a
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok || a.contains(char::is_whitespace) {
            return Err(ClientError::InvalidArgument(format!(
                "queue address {a:?} is not host:port (port 1-65535)"
            )));
        }
        if out.iter().any(|o| o == a) {
            return Err(ClientError::InvalidArgument(format!(
                "queue address {a:?} is listed twice"
            )));
        }
        out.push(a.to_owned());
    }
    if out.len() > MAX_ADDRS {
        return Err(ClientError::InvalidArgument(format!(
            "{} queue addresses given; at most {MAX_ADDRS}",
            out.len()
        )));
    }
    Ok(out)
}

/// The order in which a client tries its `n` addresses after `current` (the one it was connected
/// to, `None` at start) failed: the list from the top (the preferred address first), skipping
/// `current`, which comes last. So a client stays on the queue it failed over to until that one
/// dies, and then goes back to the preferred one if it is up.
pub fn failover_order(n: usize, current: Option<usize>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).filter(|&i| Some(i) != current).collect();
    if let Some(c) = current.filter(|&c| c < n) {
        order.push(c);
    }
    order
}

/// Client tunables.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub token: Option<String>,
    /// Time allowed for each request's reply (RESERVE gets its wait on top).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Largest reply frame accepted.
    pub max_frame: usize,
    /// Requests buffered for the connection task before callers wait.
    pub queue_depth: usize,
    /// A connection whose PING has had no reply for this long is dead: the client moves to the
    /// next queue address. Pings go out every quarter of it. `Duration::ZERO` turns pings off.
    pub ping_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            token: None,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_secs(2),
            max_frame: 64 * 1024 * 1024,
            queue_depth: 4096,
            ping_timeout: DEFAULT_PING_TIMEOUT,
        }
    }
}

type ReplyTx = oneshot::Sender<Result<Reply, ClientError>>;

struct Call {
    req: Request,
    reply: ReplyTx,
}

/// Which queue address a client is on, shared by its connection task and its handles.
struct Failover {
    addrs: Vec<String>,
    /// Index into `addrs` of the queue connected to (or last connected to).
    active: AtomicUsize,
    /// Connections made to another address than the one before.
    failovers: AtomicU64,
    /// Bumped on every connection made (the first, a reconnect, a failover).
    epoch: watch::Sender<u64>,
}

impl Failover {
    fn new(addrs: Vec<String>) -> Arc<Failover> {
        Arc::new(Failover {
            addrs,
            active: AtomicUsize::new(usize::MAX),
            failovers: AtomicU64::new(0),
            epoch: watch::channel(0).0,
        })
    }

    fn current(&self) -> Option<usize> {
        let i = self.active.load(Ordering::Acquire);
        (i < self.addrs.len()).then_some(i)
    }

    /// Record a connection to `addrs[i]`.
    fn connected(&self, i: usize, what: &str) {
        let before = self.active.swap(i, Ordering::AcqRel);
        if before < self.addrs.len() && before != i {
            let n = self.failovers.fetch_add(1, Ordering::Relaxed) + 1;
            warn!(from = %self.addrs[before], to = %self.addrs[i], failovers = n, "{what} failed over to another queue");
        } else if before < self.addrs.len() {
            debug!(addr = %self.addrs[i], "{what} reconnected to the queue");
        } else {
            info!(addr = %self.addrs[i], "{what} connected to the queue");
        }
        self.epoch.send_modify(|e| *e += 1);
    }
}

/// One round over the addresses in [`failover_order`]: the first that connects and completes the
/// handshake wins. Returns its index, or every address's error.
async fn connect_round<T, F, Fut>(
    addrs: &[String],
    current: Option<usize>,
    mut once: F,
) -> Result<(usize, T), ClientError>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let mut errors = Vec::new();
    for i in failover_order(addrs.len(), current) {
        match once(addrs[i].clone()).await {
            Ok(c) => return Ok((i, c)),
            Err(e) => errors.push((i, e)),
        }
    }
    if errors.len() == 1 {
        return Err(errors
            .pop()
            .map(|(_, e)| e)
            .unwrap_or(ClientError::Disconnected));
    }
    // A refused token is the operator's problem to see, not a transient one.
    if let Some(pos) = errors
        .iter()
        .position(|(_, e)| !e.is_transient() && e.code().is_some())
    {
        return Err(errors.swap_remove(pos).1);
    }
    Err(ClientError::Unavailable(
        errors
            .iter()
            .map(|(i, e)| format!("{}: {e}", addrs[*i]))
            .collect::<Vec<_>>()
            .join("; "),
    ))
}

struct Inner {
    addr: String,
    failover: Arc<Failover>,
    config: ClientConfig,
    tx: mpsc::Sender<Call>,
    connected: Arc<AtomicBool>,
    last_error: Arc<Mutex<String>>,
    /// Set when the server answered PUSH_KEYED / RESERVE_AS / RELEASE with `unknown_command` (a
    /// server older than affinity): plain requests are sent until then, and the keyed forms are
    /// tried again after it.
    plain_until: Mutex<Option<std::time::Instant>>,
    _stop: DropGuard,
}

/// How long a client sends plain PUSH / RESERVE after a server refused the affinity forms.
const PLAIN_RETRY: Duration = Duration::from_secs(60);

/// A handle to a NetQueue server. Clones share one connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.inner.addr)
            .finish_non_exhaustive()
    }
}

type Conn = Framed<TcpStream, tokio_util::codec::LengthDelimitedCodec>;

/// Connects and completes the handshake.
async fn connect_once(addr: &str, config: &ClientConfig) -> Result<Conn, ClientError> {
    let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| ClientError::Connect {
            addr: addr.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
        })?
        .map_err(|source| ClientError::Connect {
            addr: addr.to_owned(),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    let mut conn = Framed::new(stream, codec(config.max_frame));
    let hello = Request::Hello {
        version: PROTOCOL_VERSION,
        token: config.token.clone().unwrap_or_default(),
    };
    let handshake = async {
        conn.send(encode_request(1, &hello))
            .await
            .map_err(|_| ClientError::Disconnected)?;
        match conn.next().await {
            Some(Ok(body)) => match decode_reply(body.freeze()) {
                Ok((_, Reply::HelloOk { .. })) => Ok(()),
                Ok((_, Reply::Error { code, message })) => {
                    Err(ClientError::Server { code, message })
                }
                Ok((_, other)) => Err(ClientError::Protocol(format!(
                    "unexpected handshake reply {other:?}"
                ))),
                Err(e) => Err(ClientError::Protocol(e.to_string())),
            },
            _ => Err(ClientError::Disconnected),
        }
    };
    tokio::time::timeout(config.request_timeout, handshake)
        .await
        .map_err(|_| ClientError::Timeout(config.request_timeout))??;
    Ok(conn)
}

enum Exit {
    ClientsGone,
    Disconnected(String),
}

/// Serves calls over one connection until it breaks or every client handle is gone.
async fn drive(
    conn: Conn,
    rx: &mut mpsc::Receiver<Call>,
    stop: &CancellationToken,
    ping_timeout: Duration,
) -> Exit {
    const MAX_INFLIGHT: usize = 4096;
    let (mut wr, mut rd) = conn.split();
    let mut inflight: HashMap<u64, ReplyTx> = HashMap::new();
    let mut next_id = 1u64;
    let mut dirty = false;
    // Keepalive: a PING every quarter of the timeout; one unanswered for the whole timeout means
    // the server (or the path to it) is gone even though TCP has not said so.
    let pings = !ping_timeout.is_zero();
    let mut ping_tick = tokio::time::interval((ping_timeout / 4).max(Duration::from_millis(10)));
    ping_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping_tick.tick().await;
    let mut ping_out: Option<(u64, tokio::time::Instant)> = None;
    let exit = loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break Exit::ClientsGone,
            _ = ping_tick.tick(), if pings => {
                match ping_out {
                    Some((_, sent)) if sent.elapsed() >= ping_timeout => {
                        break Exit::Disconnected(format!("no reply to a ping within {ping_timeout:?}"));
                    }
                    Some(_) => {}
                    None => {
                        let id = next_id;
                        next_id = next_id.wrapping_add(1).max(1);
                        if let Err(e) = wr.feed(encode_request(id, &Request::Ping)).await {
                            break Exit::Disconnected(e.to_string());
                        }
                        dirty = true;
                        ping_out = Some((id, tokio::time::Instant::now()));
                    }
                }
            }
            frame = rd.next() => match frame {
                Some(Ok(body)) => match decode_reply(body.freeze()) {
                    // Id 0 is never a reply to us: an event, or a connection-level error the
                    // server follows by closing (which the next read reports).
                    Ok((0, Reply::Error { code, message })) => {
                        debug!(%code, %message, "queue server connection error");
                    }
                    Ok((0, _)) => {}
                    Ok((id, _)) if ping_out.is_some_and(|(p, _)| p == id) => ping_out = None,
                    Ok((id, reply)) => {
                        if let Some(tx) = inflight.remove(&id) {
                            let _ = tx.send(Ok(reply));
                        }
                    }
                    Err(e) => break Exit::Disconnected(format!("undecodable reply: {e}")),
                },
                Some(Err(e)) => break Exit::Disconnected(e.to_string()),
                None => break Exit::Disconnected("server closed the connection".into()),
            },
            call = rx.recv(), if inflight.len() < MAX_INFLIGHT => match call {
                None => break Exit::ClientsGone,
                Some(call) => {
                    if call.reply.is_closed() {
                        continue; // the caller timed out while the request was queued
                    }
                    let id = next_id;
                    next_id = next_id.wrapping_add(1).max(1);
                    let body = encode_request(id, &call.req);
                    inflight.insert(id, call.reply);
                    if let Err(e) = wr.feed(body).await {
                        break Exit::Disconnected(e.to_string());
                    }
                    dirty = true;
                }
            },
            res = SinkExt::<Bytes>::flush(&mut wr), if dirty => {
                if let Err(e) = res {
                    break Exit::Disconnected(e.to_string());
                }
                dirty = false;
            }
        }
    };
    for (_, tx) in inflight {
        let _ = tx.send(Err(ClientError::Disconnected));
    }
    exit
}

async fn manager(
    failover: Arc<Failover>,
    config: ClientConfig,
    mut rx: mpsc::Receiver<Call>,
    mut conn: Option<Conn>,
    connected: Arc<AtomicBool>,
    last_error: Arc<Mutex<String>>,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::new(config.backoff_min, config.backoff_max);
    loop {
        let c = match conn.take() {
            Some(c) => c,
            None => {
                // Fail calls made while down at once, so callers (the API keeping jobs `queued`
                // in its database) learn the queue is unavailable instead of waiting out timeouts.
                let sleep = tokio::time::sleep(backoff.next_delay());
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = &mut sleep => break,
                        call = rx.recv() => match call {
                            None => return,
                            Some(call) => {
                                let why = last_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
                                let _ = call.reply.send(Err(ClientError::Unavailable(why)));
                            }
                        },
                    }
                }
                let round = connect_round(&failover.addrs, failover.current(), |a| {
                    let config = config.clone();
                    async move { connect_once(&a, &config).await }
                });
                let res = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = round => r,
                };
                match res {
                    Ok((i, c)) => {
                        failover.connected(i, "client");
                        c
                    }
                    Err(e) => {
                        *last_error.lock().unwrap_or_else(|e| e.into_inner()) = e.to_string();
                        continue;
                    }
                }
            }
        };
        backoff.reset();
        connected.store(true, Ordering::Release);
        let exit = drive(c, &mut rx, &stop, config.ping_timeout).await;
        connected.store(false, Ordering::Release);
        match exit {
            Exit::ClientsGone => return,
            Exit::Disconnected(why) => {
                let addr = failover
                    .current()
                    .map(|i| failover.addrs[i].clone())
                    .unwrap_or_default();
                if failover.addrs.len() > 1 {
                    warn!(%addr, %why, "queue connection lost; trying the queue addresses in order");
                } else {
                    debug!(%addr, %why, "queue connection lost");
                }
                *last_error.lock().unwrap_or_else(|e| e.into_inner()) = why;
            }
        }
    }
}

fn check_priority(p: u8) -> Result<(), ClientError> {
    if (MIN_PRIORITY..=MAX_PRIORITY).contains(&p) {
        Ok(())
    } else {
        Err(ClientError::InvalidArgument(format!(
            "priority must be {MIN_PRIORITY}..={MAX_PRIORITY}, got {p}"
        )))
    }
}

fn unexpected(r: Reply) -> ClientError {
    match r {
        Reply::Error { code, message } => ClientError::Server { code, message },
        other => ClientError::Protocol(format!("unexpected reply {other:?}")),
    }
}

impl Client {
    /// Connects to `addr` (`host:port`, or a comma-separated list for failover, see
    /// [`parse_addrs`]) with default settings. Fails if no queue is reachable or one refuses the
    /// token (`ClientError::Server { code: ErrorCode::Unauthorized, .. }`).
    pub async fn connect(addr: &str, token: Option<String>) -> Result<Client, ClientError> {
        Self::connect_with(
            addr,
            ClientConfig {
                token,
                ..ClientConfig::default()
            },
        )
        .await
    }

    /// Like [`Client::connect`], but a queue that is not reachable yet is
    /// not an error: the client starts disconnected and keeps reconnecting
    /// in the background (calls fail with `Unavailable` meanwhile). A queue
    /// that answers but refuses the token is still an error.
    pub async fn connect_lazy(addr: &str, token: Option<String>) -> Result<Client, ClientError> {
        Self::connect_lazy_with(
            addr,
            ClientConfig {
                token,
                ..ClientConfig::default()
            },
        )
        .await
    }

    /// [`Client::connect_lazy`] with explicit settings.
    pub async fn connect_lazy_with(
        addr: &str,
        config: ClientConfig,
    ) -> Result<Client, ClientError> {
        let addrs = parse_addrs(addr)?;
        let failover = Failover::new(addrs);
        let round = connect_round(&failover.addrs, None, |a| {
            let config = config.clone();
            async move { connect_once(&a, &config).await }
        })
        .await;
        match round {
            Ok((i, conn)) => {
                failover.connected(i, "client");
                Ok(Self::start(failover, config, Some(conn)))
            }
            Err(
                e @ (ClientError::Connect { .. }
                | ClientError::Timeout(_)
                | ClientError::Disconnected
                | ClientError::Unavailable(_)),
            ) => {
                tracing::warn!(addr, error = %e, "queue not reachable yet; reconnecting in the background");
                let c = Self::start(failover, config, None);
                if let Ok(mut le) = c.inner.last_error.lock() {
                    *le = e.to_string();
                }
                c.inner.connected.store(false, Ordering::SeqCst);
                Ok(c)
            }
            Err(e) => Err(e),
        }
    }

    pub async fn connect_with(addr: &str, config: ClientConfig) -> Result<Client, ClientError> {
        let failover = Failover::new(parse_addrs(addr)?);
        let (i, conn) = connect_round(&failover.addrs, None, |a| {
            let config = config.clone();
            async move { connect_once(&a, &config).await }
        })
        .await?;
        failover.connected(i, "client");
        Ok(Self::start(failover, config, Some(conn)))
    }

    fn start(failover: Arc<Failover>, config: ClientConfig, conn: Option<Conn>) -> Client {
        let (tx, rx) = mpsc::channel(config.queue_depth.max(1));
        let connected = Arc::new(AtomicBool::new(true));
        let last_error = Arc::new(Mutex::new(String::new()));
        let stop = CancellationToken::new();
        tokio::spawn(manager(
            failover.clone(),
            config.clone(),
            rx,
            conn,
            connected.clone(),
            last_error.clone(),
            stop.clone(),
        ));
        Client {
            inner: Arc::new(Inner {
                addr: failover.addrs.join(","),
                failover,
                config,
                tx,
                connected,
                last_error,
                plain_until: Mutex::new(None),
                _stop: stop.drop_guard(),
            }),
        }
    }

    /// The queue addresses this client uses, the preferred first.
    pub fn addrs(&self) -> &[String] {
        &self.inner.failover.addrs
    }

    /// The address of the queue the shared connection is on (or was last on); `None` before the
    /// first connection.
    pub fn active_addr(&self) -> Option<&str> {
        let f = &self.inner.failover;
        f.current().map(|i| f.addrs[i].as_str())
    }

    /// How many times the shared connection moved to another queue address.
    pub fn failovers(&self) -> u64 {
        self.inner.failover.failovers.load(Ordering::Relaxed)
    }

    /// Changes each time the shared connection is (re)established, to the same queue or another:
    /// a queue that may have lost messages (a standby that starts empty, a restart without its
    /// log) is on the other end, so whatever the database holds as queued should be pushed again.
    pub fn connection_changes(&self) -> watch::Receiver<u64> {
        self.inner.failover.epoch.subscribe()
    }

    /// Whether the shared connection is currently up.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    async fn call(&self, req: Request, extra: Duration) -> Result<Reply, ClientError> {
        let timeout = self.inner.config.request_timeout + extra;
        let (tx, rx) = oneshot::channel();
        let work = async {
            self.inner
                .tx
                .send(Call { req, reply: tx })
                .await
                .map_err(|_| ClientError::Disconnected)?;
            rx.await.map_err(|_| ClientError::Disconnected)?
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) if !self.is_connected() => {
                let why = self
                    .inner
                    .last_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                Err(ClientError::Unavailable(why))
            }
            Err(_) => Err(ClientError::Timeout(timeout)),
        }
    }

    /// Whether the affinity forms of the requests should be sent (see `Inner::plain_until`).
    fn affinity_supported(&self) -> bool {
        let mut g = self
            .inner
            .plain_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match *g {
            Some(t) if t > std::time::Instant::now() => false,
            Some(_) => {
                *g = None;
                true
            }
            None => true,
        }
    }

    /// Sends `req` (an affinity form); on `unknown_command` remembers that the server predates
    /// affinity and sends `plain` instead.
    async fn call_keyed(
        &self,
        req: Request,
        plain: Request,
        extra: Duration,
    ) -> Result<Reply, ClientError> {
        if !self.affinity_supported() {
            return self.call(plain, extra).await;
        }
        match self.call(req, extra).await? {
            Reply::Error {
                code: ErrorCode::UnknownCommand,
                ..
            } => {
                debug!("the queue server predates affinity; sending plain requests");
                *self
                    .inner
                    .plain_until
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) =
                    Some(std::time::Instant::now() + PLAIN_RETRY);
                self.call(plain, extra).await
            }
            r => Ok(r),
        }
    }

    /// Queues a message. Returns once it is durable under the server's fsync policy.
    pub async fn push(&self, msg: Push) -> Result<PushOutcome, ClientError> {
        check_priority(msg.priority)?;
        let req = Request::Push {
            queue: msg.queue,
            id: msg.id,
            priority: msg.priority,
            delay_ms: duration_ms(msg.delay),
            payload: msg.payload,
            affinity: msg.affinity,
        };
        let reply = match &req {
            Request::Push {
                queue,
                id,
                priority,
                delay_ms,
                payload,
                affinity,
            } if !affinity.is_empty() => {
                let plain = Request::Push {
                    queue: queue.clone(),
                    id: id.clone(),
                    priority: *priority,
                    delay_ms: *delay_ms,
                    payload: payload.clone(),
                    affinity: String::new(),
                };
                self.call_keyed(req, plain, Duration::ZERO).await?
            }
            _ => self.call(req, Duration::ZERO).await?,
        };
        match reply {
            Reply::Pushed(o) => Ok(o),
            r => Err(unexpected(r)),
        }
    }

    /// [`Client::reserve`] as `consumer` (Remora: the worker id), for affinity: messages whose
    /// key this consumer owns come to it first, and those another consumer owns are left to it
    /// for the server's affinity hold. The keys a consumer owns are released when its last
    /// connection closes, or by [`Client::release`]. Against a server without affinity this is a
    /// plain RESERVE.
    pub async fn reserve_as(
        &self,
        consumer: &str,
        queues: &[&str],
        max: u32,
        wait: Duration,
        lease: Duration,
    ) -> Result<Vec<Delivery>, ClientError> {
        let req = |consumer: &str| Request::Reserve {
            queues: queues.iter().map(|q| q.to_string()).collect(),
            max,
            wait_ms: duration_ms(wait),
            lease_ms: duration_ms(lease),
            consumer: consumer.to_string(),
        };
        let reply = if consumer.is_empty() {
            self.call(req(""), wait).await?
        } else {
            self.call_keyed(req(consumer), req(""), wait).await?
        };
        match reply {
            Reply::Deliveries(ds) => Ok(ds),
            r => Err(unexpected(r)),
        }
    }

    /// Tells the queue that `consumer` no longer holds a warm connection for `keys` (at most
    /// 4096 per call), or with `all` for any key. A no-op against a server without affinity.
    pub async fn release(
        &self,
        consumer: &str,
        all: bool,
        keys: Vec<String>,
    ) -> Result<(), ClientError> {
        if !self.affinity_supported() {
            return Ok(());
        }
        let req = Request::Release {
            consumer: consumer.to_string(),
            all,
            keys,
        };
        match self.call(req, Duration::ZERO).await? {
            Reply::Ok
            | Reply::Error {
                code: ErrorCode::UnknownCommand,
                ..
            } => Ok(()),
            r => Err(unexpected(r)),
        }
    }

    /// Leases up to `max` messages from `queues` (highest priority first). Returns as soon as at
    /// least one is available, or an empty list after `wait`.
    pub async fn reserve(
        &self,
        queues: &[&str],
        max: u32,
        wait: Duration,
        lease: Duration,
    ) -> Result<Vec<Delivery>, ClientError> {
        let req = Request::Reserve {
            queues: queues.iter().map(|q| q.to_string()).collect(),
            max,
            wait_ms: duration_ms(wait),
            lease_ms: duration_ms(lease),
            consumer: String::new(),
        };
        match self.call(req, wait).await? {
            Reply::Deliveries(ds) => Ok(ds),
            r => Err(unexpected(r)),
        }
    }

    async fn expect_ok(&self, req: Request) -> Result<(), ClientError> {
        match self.call(req, Duration::ZERO).await? {
            Reply::Ok => Ok(()),
            r => Err(unexpected(r)),
        }
    }

    /// Completes a lease. A lease that ran out (even if the message was leased again) is refused
    /// with `unknown_lease`.
    pub async fn ack(&self, queue: &str, id: &str, lease_id: u64) -> Result<(), ClientError> {
        self.expect_ok(Request::Ack {
            queue: queue.into(),
            id: id.into(),
            lease_id,
        })
        .await
    }

    /// Returns a leased message to its queue, deliverable again after `delay`.
    pub async fn nack(
        &self,
        queue: &str,
        id: &str,
        lease_id: u64,
        delay: Duration,
    ) -> Result<(), ClientError> {
        self.expect_ok(Request::Nack {
            queue: queue.into(),
            id: id.into(),
            lease_id,
            delay_ms: duration_ms(delay),
        })
        .await
    }

    /// Extends a lease to `lease` from now.
    pub async fn touch(
        &self,
        queue: &str,
        id: &str,
        lease_id: u64,
        lease: Duration,
    ) -> Result<(), ClientError> {
        self.expect_ok(Request::Touch {
            queue: queue.into(),
            id: id.into(),
            lease_id,
            lease_ms: duration_ms(lease),
        })
        .await
    }

    /// Removes a queued or delayed (not leased) message; returns whether one was removed.
    pub async fn cancel(&self, queue: &str, id: &str) -> Result<bool, ClientError> {
        match self
            .call(
                Request::Cancel {
                    queue: queue.into(),
                    id: id.into(),
                },
                Duration::ZERO,
            )
            .await?
        {
            Reply::Canceled(b) => Ok(b),
            r => Err(unexpected(r)),
        }
    }

    pub async fn stats(&self) -> Result<Stats, ClientError> {
        match self.call(Request::Stats, Duration::ZERO).await? {
            Reply::Stats(json) => {
                serde_json::from_slice(&json).map_err(|e| ClientError::Protocol(e.to_string()))
            }
            r => Err(unexpected(r)),
        }
    }

    pub async fn ping(&self) -> Result<(), ClientError> {
        self.expect_ok(Request::Ping).await
    }

    /// Sends an event to the current subscribers of `topic` (and of `*`). Not durable.
    pub async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), ClientError> {
        self.expect_ok(Request::Publish {
            topic: topic.into(),
            payload,
        })
        .await
    }

    /// Subscribes to `topics` (`"*"` = every topic) on a connection of its own. Returns once the
    /// server has registered the subscription, so every event published after this returns is
    /// delivered (unless the subscriber falls more than the server's buffer behind).
    pub async fn subscribe(&self, topics: Vec<String>) -> Result<Subscription, ClientError> {
        if topics.is_empty() {
            return Err(ClientError::InvalidArgument(
                "subscribe needs at least one topic".into(),
            ));
        }
        let config = self.inner.config.clone();
        let addrs = self.inner.failover.addrs.clone();
        // The queue the shared connection is on first, then the list in order.
        let start = self.inner.failover.current();
        let mut order = start.into_iter().collect::<Vec<_>>();
        order.extend(
            failover_order(addrs.len(), start)
                .into_iter()
                .filter(|&i| Some(i) != start),
        );
        let mut conn = None;
        let mut errors = Vec::new();
        for i in order {
            match subscribe_once(&addrs[i], &config, &topics).await {
                Ok(c) => {
                    conn = Some((i, c));
                    break;
                }
                Err(e) if addrs.len() == 1 => return Err(e),
                Err(e) => errors.push(format!("{}: {e}", addrs[i])),
            }
        }
        let Some((i, conn)) = conn else {
            return Err(ClientError::Unavailable(errors.join("; ")));
        };
        let (tx, rx) = mpsc::channel(1024);
        let stop = CancellationToken::new();
        tokio::spawn(subscription_task(
            addrs,
            i,
            config,
            topics,
            conn,
            tx,
            stop.clone(),
        ));
        Ok(Subscription {
            rx,
            _stop: stop.drop_guard(),
        })
    }
}

async fn subscribe_once(
    addr: &str,
    config: &ClientConfig,
    topics: &[String],
) -> Result<Conn, ClientError> {
    let mut conn = connect_once(addr, config).await?;
    let work = async {
        conn.send(encode_request(
            2,
            &Request::Subscribe {
                topics: topics.to_vec(),
            },
        ))
        .await
        .map_err(|_| ClientError::Disconnected)?;
        loop {
            match conn.next().await {
                Some(Ok(body)) => match decode_reply(body.freeze()) {
                    Ok((2, Reply::Ok)) => return Ok(()),
                    Ok((_, Reply::Error { code, message })) => {
                        return Err(ClientError::Server { code, message })
                    }
                    Ok(_) => continue,
                    Err(e) => return Err(ClientError::Protocol(e.to_string())),
                },
                _ => return Err(ClientError::Disconnected),
            }
        }
    };
    tokio::time::timeout(config.request_timeout, work)
        .await
        .map_err(|_| ClientError::Timeout(config.request_timeout))??;
    Ok(conn)
}

async fn subscription_task(
    addrs: Vec<String>,
    mut current: usize,
    config: ClientConfig,
    topics: Vec<String>,
    conn: Conn,
    tx: mpsc::Sender<Event>,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::new(config.backoff_min, config.backoff_max);
    let mut conn = Some(conn);
    loop {
        let mut c = match conn.take() {
            Some(c) => c,
            None => {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                }
                let round = connect_round(&addrs, Some(current), |a| {
                    let (config, topics) = (config.clone(), topics.clone());
                    async move { subscribe_once(&a, &config, &topics).await }
                });
                let res = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = round => r,
                };
                match res {
                    Ok((i, c)) => {
                        if i != current {
                            info!(from = %addrs[current], to = %addrs[i], "subscription moved to another queue");
                        }
                        current = i;
                        c
                    }
                    Err(e) => {
                        debug!(error = %e, "resubscribe failed");
                        continue;
                    }
                }
            }
        };
        backoff.reset();
        // Keepalive as on the shared connection: a ping unanswered for `ping_timeout` means the
        // queue is gone; resubscribe elsewhere.
        let timeout = config.ping_timeout;
        let mut tick = tokio::time::interval((timeout / 4).max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut ping_sent: Option<tokio::time::Instant> = None;
        loop {
            let frame = tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick(), if !timeout.is_zero() => {
                    match ping_sent {
                        Some(at) if at.elapsed() >= timeout => {
                            debug!("subscription ping timed out");
                            break;
                        }
                        Some(_) => continue,
                        None => {
                            if c.send(encode_request(3, &Request::Ping)).await.is_err() {
                                break;
                            }
                            ping_sent = Some(tokio::time::Instant::now());
                            continue;
                        }
                    }
                }
                f = c.next() => f,
            };
            match frame.map(|r| r.map(|b| decode_reply(b.freeze()))) {
                Some(Ok(Ok((_, Reply::Event(ev))))) => {
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Ok((_, Reply::Error { .. })))) | Some(Ok(Err(_))) | Some(Err(_)) | None => {
                    break
                }
                Some(Ok(Ok((3, _)))) => ping_sent = None,
                Some(Ok(Ok(_))) => {}
            }
        }
    }
}

/// A live subscription; dropping it unsubscribes.
pub struct Subscription {
    rx: mpsc::Receiver<Event>,
    _stop: DropGuard,
}

impl Subscription {
    /// The next event. Reconnects transparently; events published while disconnected are lost.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_lists_parse_in_order_and_bad_ones_are_named() {
        assert_eq!(parse_addrs("127.0.0.1:9000").unwrap(), ["127.0.0.1:9000"]);
        assert_eq!(
            parse_addrs(" a:9000 , b:9001,[::1]:9002").unwrap(),
            ["a:9000", "b:9001", "[::1]:9002"]
        );
        for (bad, says) in [
            ("", "empty entry"),
            ("a:9000,", "empty entry"),
            ("a:9000,,b:1", "empty entry"),
            ("a", "not host:port"),
            (":9000", "not host:port"),
            ("a:0", "not host:port"),
            ("a:70000", "not host:port"),
            ("a:x", "not host:port"),
            ("a b:1", "not host:port"),
            ("a:1,b:2,a:1", "listed twice"),
        ] {
            let e = parse_addrs(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
        let many: Vec<String> = (1..=MAX_ADDRS + 1).map(|p| format!("h:{p}")).collect();
        assert!(parse_addrs(&many.join(","))
            .unwrap_err()
            .to_string()
            .contains("at most"));
        assert_eq!(
            parse_addrs(&many[..MAX_ADDRS].join(",")).unwrap().len(),
            MAX_ADDRS
        );
    }

    #[test]
    fn failover_tries_the_list_from_the_top_and_the_dead_one_last() {
        assert_eq!(failover_order(1, None), [0]);
        assert_eq!(failover_order(1, Some(0)), [0]);
        assert_eq!(failover_order(3, None), [0, 1, 2]);
        // The preferred queue died: the standbys in order, then the preferred again.
        assert_eq!(failover_order(3, Some(0)), [1, 2, 0]);
        // On a standby that died: back to the preferred first.
        assert_eq!(failover_order(3, Some(1)), [0, 2, 1]);
        assert_eq!(failover_order(3, Some(2)), [0, 1, 2]);
    }

    #[test]
    fn push_builder_and_priority_check() {
        let p = Push::new("q", "id", Bytes::from_static(b"x"))
            .priority(9)
            .delay(Duration::from_secs(1));
        assert_eq!((p.priority, p.delay), (9, Duration::from_secs(1)));
        assert!(check_priority(0).is_err());
        assert!(check_priority(11).is_err());
        assert!(check_priority(10).is_ok());
    }
}
