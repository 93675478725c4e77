//! The NetQueue client used by the API and the workers: one multiplexed connection per [`Client`]
//! (cheap to clone), pipelined requests matched to replies by request id, per-request timeouts,
//! and automatic reconnection with capped exponential backoff. Subscriptions use a connection of
//! their own and re-subscribe after a reconnect.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Framed;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::debug;

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
        }
    }
}

type ReplyTx = oneshot::Sender<Result<Reply, ClientError>>;

struct Call {
    req: Request,
    reply: ReplyTx,
}

struct Inner {
    addr: String,
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
async fn drive(conn: Conn, rx: &mut mpsc::Receiver<Call>, stop: &CancellationToken) -> Exit {
    const MAX_INFLIGHT: usize = 4096;
    let (mut wr, mut rd) = conn.split();
    let mut inflight: HashMap<u64, ReplyTx> = HashMap::new();
    let mut next_id = 1u64;
    let mut dirty = false;
    let exit = loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break Exit::ClientsGone,
            frame = rd.next() => match frame {
                Some(Ok(body)) => match decode_reply(body.freeze()) {
                    // Id 0 is never a reply to us: an event, or a connection-level error the
                    // server follows by closing (which the next read reports).
                    Ok((0, Reply::Error { code, message })) => {
                        debug!(%code, %message, "queue server connection error");
                    }
                    Ok((0, _)) => {}
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
    addr: String,
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
                match connect_once(&addr, &config).await {
                    Ok(c) => {
                        debug!(%addr, "reconnected to queue server");
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
        let exit = drive(c, &mut rx, &stop).await;
        connected.store(false, Ordering::Release);
        match exit {
            Exit::ClientsGone => return,
            Exit::Disconnected(why) => {
                debug!(%addr, %why, "queue connection lost");
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
    /// Connects to `addr` (`host:port`) with default settings. Fails if the server is unreachable
    /// or refuses the token (`ClientError::Server { code: ErrorCode::Unauthorized, .. }`).
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
        let config = ClientConfig {
            token,
            ..ClientConfig::default()
        };
        match connect_once(addr, &config).await {
            Ok(conn) => Ok(Self::start(addr, config, Some(conn))),
            Err(
                e @ (ClientError::Connect { .. }
                | ClientError::Timeout(_)
                | ClientError::Disconnected
                | ClientError::Unavailable(_)),
            ) => {
                tracing::warn!(addr, error = %e, "queue not reachable yet; reconnecting in the background");
                let c = Self::start(addr, config, None);
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
        let conn = connect_once(addr, &config).await?;
        Ok(Self::start(addr, config, Some(conn)))
    }

    fn start(addr: &str, config: ClientConfig, conn: Option<Conn>) -> Client {
        let (tx, rx) = mpsc::channel(config.queue_depth.max(1));
        let connected = Arc::new(AtomicBool::new(true));
        let last_error = Arc::new(Mutex::new(String::new()));
        let stop = CancellationToken::new();
        tokio::spawn(manager(
            addr.to_owned(),
            config.clone(),
            rx,
            conn,
            connected.clone(),
            last_error.clone(),
            stop.clone(),
        ));
        Client {
            inner: Arc::new(Inner {
                addr: addr.to_owned(),
                config,
                tx,
                connected,
                last_error,
                plain_until: Mutex::new(None),
                _stop: stop.drop_guard(),
            }),
        }
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
        let addr = self.inner.addr.clone();
        let conn = subscribe_once(&addr, &config, &topics).await?;
        let (tx, rx) = mpsc::channel(1024);
        let stop = CancellationToken::new();
        tokio::spawn(subscription_task(
            addr,
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
    addr: String,
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
                match subscribe_once(&addr, &config, &topics).await {
                    Ok(c) => c,
                    Err(e) => {
                        debug!(%addr, error = %e, "resubscribe failed");
                        continue;
                    }
                }
            }
        };
        backoff.reset();
        loop {
            let frame = tokio::select! {
                _ = stop.cancelled() => return,
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
