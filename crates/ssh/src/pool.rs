//! A pool of authenticated connections per server: several channels share
//! one connection (below sshd's default `MaxSessions` of 10), idle
//! connections expire, and a broken one is replaced by a fresh connect.
//! Jump-host connections are shared too: one authenticated connection per
//! hop (per chain prefix) carries the `direct-tcpip` tunnels of every target
//! behind it.

use crate::{Connection, SshConfig, SshError, Target};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

/// Channels a job may hold on one connection. The other two of sshd's
/// default ten sessions (`MaxSessions`) are for the short commands that run
/// beside jobs (the cancel sweep), see [`SIDE_CHANNELS`].
pub const CHANNELS_PER_CONNECTION: usize = 8;
/// Short side commands at once per connection, so that canceling all eight
/// jobs of a connection at once never asks sshd for an eleventh session.
pub const SIDE_CHANNELS: usize = 2;

pub struct Pooled {
    pub conn: Connection,
    /// The server (its id) this connection was opened for.
    server_key: Arc<str>,
    slots: Arc<Semaphore>,
    side: Semaphore,
    last_used: std::sync::Mutex<Instant>,
    /// Slots given back by their lease and waiting for [`settle`].
    settling: AtomicUsize,
}

/// How long a released slot may wait for sshd to confirm it freed the
/// session (see [`settle`]).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// sshd frees the session of a closed channel only when its main loop next
/// collects closed channels, after it has handled every packet of the read
/// that carried our CLOSE. A session opened in that same read still counts
/// the old one, and at `MaxSessions` sshd refuses it ("no more sessions").
/// A ping sent after the CLOSE is answered only once that read is handled:
/// when the reply is here, the session is gone and the slot may be reused.
async fn settle(conn: &Connection) {
    if !conn.is_closed() {
        let _ = tokio::time::timeout(SETTLE_TIMEOUT, conn.ping()).await;
    }
}

/// A lease on one channel slot of a pooled connection.
pub struct Lease {
    pub conn: Arc<Pooled>,
    /// Set when this lease opened a new connection: how long connecting took.
    pub connected_in: Option<Duration>,
    permit: Option<OwnedSemaphorePermit>,
}

impl std::ops::Deref for Lease {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn.conn
    }
}

impl Lease {
    /// Run a short command beside the job (on one of the connection's
    /// [`SIDE_CHANNELS`], waiting for a free one).
    pub async fn run_aside(
        &self,
        command: &str,
        timeout: std::time::Duration,
    ) -> Result<crate::Output, SshError> {
        self.run_aside_with_stdin(command, b"", timeout).await
    }

    /// Like [`Lease::run_aside`], with `stdin` written to the command before EOF.
    pub async fn run_aside_with_stdin(
        &self,
        command: &str,
        stdin: &[u8],
        timeout: std::time::Duration,
    ) -> Result<crate::Output, SshError> {
        let _side = tokio::time::timeout(timeout, self.conn.side.acquire())
            .await
            .map_err(|_| SshError::Ssh("no free side channel".into()))?
            .map_err(|e| SshError::Ssh(e.to_string()))?;
        let out = self.conn.conn.run_with_stdin(command, stdin, timeout).await;
        settle(&self.conn.conn).await;
        out
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Ok(mut t) = self.conn.last_used.lock() {
            *t = Instant::now();
        }
        let Some(permit) = self.permit.take() else {
            return;
        };
        // The slot goes back once sshd has freed the session (`settle`),
        // without holding up whoever dropped the lease; a lease wanted
        // meanwhile waits for it rather than opening a connection.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let conn = self.conn.clone();
            conn.settling.fetch_add(1, Ordering::SeqCst);
            rt.spawn(async move {
                settle(&conn.conn).await;
                conn.settling.fetch_sub(1, Ordering::SeqCst);
                drop(permit);
            });
        }
    }
}

pub struct Pool {
    cfg: SshConfig,
    conns: Mutex<HashMap<u64, Vec<Arc<Pooled>>>>,
    /// One connect at a time per key, so a burst of jobs shares a handshake.
    connecting: Mutex<HashMap<u64, Arc<Mutex<()>>>>,
    /// Jump connections by chain prefix (see [`chain_keys`]).
    jumps: Mutex<HashMap<u64, Arc<Connection>>>,
    pub connects_total: AtomicU64,
    /// Connections opened to jump hosts.
    pub jump_connects_total: AtomicU64,
}

fn hash_target(h: &mut impl Hasher, t: &Target) {
    t.host.hash(h);
    t.port.hash(h);
    t.user.hash(h);
    t.trusted_cas.hash(h);
    t.creds.password.hash(h);
    t.creds.private_key.hash(h);
    t.creds.passphrase.hash(h);
    t.creds.certificate.hash(h);
}

/// One key per hop of `jumps`: the hash of the chain up to and including it,
/// so a hop's connection is shared only by chains that reach it the same way.
fn chain_keys(jumps: &[Target]) -> Vec<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    "jump".hash(&mut h);
    jumps
        .iter()
        .map(|t| {
            hash_target(&mut h, t);
            h.finish()
        })
        .collect()
}

fn key_of(server_key: &str, t: &Target) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    server_key.hash(&mut h);
    // The pin is not part of the key: a connection made while the key was
    // still unpinned (trust on first use) is the one later jobs reuse once
    // the key it saw is pinned. [`Pool::try_lease`] hands a connection only
    // to jobs whose pin matches the key it verified.
    hash_target(&mut h, t);
    chain_keys(&t.jumps).last().hash(&mut h);
    h.finish()
}

impl Pool {
    pub fn new(cfg: SshConfig) -> Pool {
        Pool {
            cfg,
            conns: Mutex::new(HashMap::new()),
            connecting: Mutex::new(HashMap::new()),
            jumps: Mutex::new(HashMap::new()),
            connects_total: AtomicU64::new(0),
            jump_connects_total: AtomicU64::new(0),
        }
    }

    /// The shared connection to the last of `jumps`, connecting (hop by hop,
    /// through the hops before) whichever hop has none alive. An error names
    /// the hop that failed.
    pub async fn jump_connection(
        &self,
        jumps: &[Target],
    ) -> Result<Option<Arc<Connection>>, SshError> {
        let mut via: Option<Arc<Connection>> = None;
        for (hop, key) in jumps.iter().zip(chain_keys(jumps)) {
            let gate = self.connecting.lock().await.entry(key).or_default().clone();
            let _g = gate.lock().await;
            let alive = self
                .jumps
                .lock()
                .await
                .get(&key)
                .filter(|c| !c.is_closed())
                .cloned();
            let conn = match alive {
                Some(c) => c,
                None => {
                    let c = Connection::connect_via(hop, via.clone(), &self.cfg)
                        .await
                        .map_err(|e| e.at_hop(hop))?;
                    self.jump_connects_total.fetch_add(1, Ordering::Relaxed);
                    let c = Arc::new(c);
                    self.jumps.lock().await.insert(key, c.clone());
                    c
                }
            };
            via = Some(conn);
        }
        Ok(via)
    }

    pub fn config(&self) -> &SshConfig {
        &self.cfg
    }

    /// A free slot on a live connection that serves `pinned`. A connection
    /// whose host key differs from the pin (a new key was accepted through
    /// the API) leaves the pool: jobs on it run on, new ones connect afresh.
    fn try_lease(list: &mut Vec<Arc<Pooled>>, pinned: Option<&str>) -> Option<Lease> {
        list.retain(|p| {
            !p.conn.is_closed() && pinned.is_none_or(|fp| p.conn.host_key_fingerprint() == fp)
        });
        for p in list.iter() {
            if let Ok(permit) = p.slots.clone().try_acquire_owned() {
                return Some(Lease {
                    conn: p.clone(),
                    connected_in: None,
                    permit: Some(permit),
                });
            }
        }
        None
    }

    /// A slot that is about to come back (see [`settle`]): waiting one round
    /// trip for it beats opening a connection.
    async fn settled_lease(&self, key: u64, pinned: Option<&str>) -> Option<Lease> {
        let p = self
            .conns
            .lock()
            .await
            .get(&key)?
            .iter()
            .find(|p| {
                p.settling.load(Ordering::SeqCst) > 0
                    && !p.conn.is_closed()
                    && pinned.is_none_or(|fp| p.conn.host_key_fingerprint() == fp)
            })?
            .clone();
        let permit = tokio::time::timeout(SETTLE_TIMEOUT, p.slots.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        Some(Lease {
            conn: p,
            connected_in: None,
            permit: Some(permit),
        })
    }

    /// A channel slot on a live connection to `target`, connecting when none
    /// has a free slot. `server_key` names the server (its id).
    pub async fn lease(&self, server_key: &str, target: &Target) -> Result<Lease, SshError> {
        let key = key_of(server_key, target);
        let pinned = target.pinned.as_deref();
        if let Some(l) = Self::try_lease(self.conns.lock().await.entry(key).or_default(), pinned) {
            return Ok(l);
        }
        let gate = self.connecting.lock().await.entry(key).or_default().clone();
        let _g = gate.lock().await;
        // Someone may have connected while we waited for the gate.
        if let Some(l) = Self::try_lease(self.conns.lock().await.entry(key).or_default(), pinned) {
            return Ok(l);
        }
        if let Some(l) = self.settled_lease(key, pinned).await {
            return Ok(l);
        }
        let via = self.jump_connection(&target.jumps).await?;
        let conn = Connection::connect_via(target, via, &self.cfg).await?;
        self.connects_total.fetch_add(1, Ordering::Relaxed);
        let pooled = Arc::new(Pooled {
            conn,
            server_key: Arc::from(server_key),
            slots: Arc::new(Semaphore::new(CHANNELS_PER_CONNECTION)),
            side: Semaphore::new(SIDE_CHANNELS),
            last_used: std::sync::Mutex::new(Instant::now()),
            settling: AtomicUsize::new(0),
        });
        let permit = pooled
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|e| SshError::Ssh(e.to_string()))?;
        self.conns
            .lock()
            .await
            .entry(key)
            .or_default()
            .push(pooled.clone());
        let connected_in = Some(pooled.conn.connected_in);
        Ok(Lease {
            conn: pooled,
            connected_in,
            permit: Some(permit),
        })
    }

    /// Take the connection under `lease` out of the pool: no new channels
    /// go to it (it failed to open one). Jobs still on it run on; it closes
    /// when the last lease on it is dropped.
    pub async fn evict(&self, lease: &Lease) {
        let mut map = self.conns.lock().await;
        for list in map.values_mut() {
            list.retain(|p| !Arc::ptr_eq(p, &lease.conn));
        }
        map.retain(|_, l| !l.is_empty());
    }

    /// Close connections idle for longer than `idle` with no channel in use, then, while more
    /// than `max_idle` connections have no channel in use, the least recently used of them.
    pub async fn expire_idle(&self, idle: Duration, max_idle: usize) -> usize {
        self.expire_idle_keys(idle, max_idle).await.0
    }

    /// [`Pool::expire_idle`], also returning the servers (their keys) that have no pooled
    /// connection left after it: the worker tells the queue it no longer holds them warm.
    pub async fn expire_idle_keys(&self, idle: Duration, max_idle: usize) -> (usize, Vec<String>) {
        let mut closed = Vec::new();
        let mut gone_keys = Vec::new();
        {
            let mut map = self.conns.lock().await;
            let mut spare: Vec<(Instant, Arc<Pooled>)> = Vec::new();
            for list in map.values_mut() {
                list.retain(|p| {
                    let in_use = p.slots.available_permits() < CHANNELS_PER_CONNECTION;
                    let last = p
                        .last_used
                        .lock()
                        .map(|t| *t)
                        .unwrap_or_else(|_| Instant::now());
                    let keep = !p.conn.is_closed() && (in_use || last.elapsed() < idle);
                    if !keep {
                        closed.push(p.clone());
                    } else if !in_use {
                        spare.push((last, p.clone()));
                    }
                    keep
                });
            }
            if spare.len() > max_idle {
                spare.sort_by_key(|(t, _)| *t);
                let excess: Vec<Arc<Pooled>> = spare
                    .drain(..spare.len() - max_idle)
                    .map(|(_, p)| p)
                    .collect();
                for list in map.values_mut() {
                    list.retain(|p| !excess.iter().any(|e| Arc::ptr_eq(e, p)));
                }
                closed.extend(excess);
            }
            map.retain(|_, l| !l.is_empty());
            let still: std::collections::HashSet<&str> = map
                .values()
                .flat_map(|l| l.iter())
                .map(|p| &*p.server_key)
                .collect();
            let mut seen = std::collections::HashSet::new();
            for p in &closed {
                let k = &*p.server_key;
                if !still.contains(k) && seen.insert(k) {
                    gone_keys.push(k.to_string());
                }
            }
        }
        let n = closed.len();
        for p in closed {
            p.conn.disconnect().await;
        }
        // A jump connection no pooled connection goes through any more
        // (only the pool holds it; the innermost hops go first).
        let mut gone = Vec::new();
        loop {
            let mut map = self.jumps.lock().await;
            let before = map.len();
            map.retain(|_, c| {
                let keep = !c.is_closed() && Arc::strong_count(c) > 1;
                if !keep {
                    gone.push(c.clone());
                }
                keep
            });
            let removed = before != map.len();
            drop(map);
            // Dropping an inner hop releases the hop before it: go round again.
            for c in gone.drain(..) {
                c.disconnect().await;
            }
            if !removed {
                break;
            }
        }
        (n, gone_keys)
    }

    /// Open connections to jump hosts.
    pub async fn jump_stats(&self) -> usize {
        self.jumps.lock().await.len()
    }

    /// (open connections, channels in use)
    pub async fn stats(&self) -> (usize, usize) {
        let map = self.conns.lock().await;
        let conns = map.values().map(|l| l.len()).sum();
        let chans = map
            .values()
            .flat_map(|l| l.iter())
            .map(|p| CHANNELS_PER_CONNECTION - p.slots.available_permits())
            .sum();
        (conns, chans)
    }
}
