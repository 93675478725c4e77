//! Group commit: writer tasks own the hot write path and run the claims, output appends, final
//! statuses and submissions waiting for them in one transaction per round.
//!
//! # Rounds
//! A caller sends its operation to the writer and waits for its own reply. A writer takes the
//! first operation waiting, then whatever else is already queued, up to
//! [`BatchLimits::max_ops`] operations and [`BatchLimits::max_bytes`] bytes (the output and job
//! text they carry), and runs them in one transaction: one `BEGIN`/`COMMIT` and one wait for the
//! write connection instead of one per operation. Nothing waits for company: an operation alone
//! in the queue is a round of one.
//!
//! # Each caller gets its own result
//! An operation that is refused as such (a claim that lost, a server at its limit, a finish of
//! a job that is not running on that worker) writes nothing and answers so (`Claim::NotQueued`,
//! `None`); the round goes on. An operation the database fails (any SQL error: a unique index, a deadlock,
//! a full disk), or an output append that finds one of its seqs stored with other bytes (its
//! other rows are in by then), may have left the transaction with writes that must not stay: the
//! round is rolled back and each of its operations is run again alone, in its own transaction,
//! as before group commit — so only the failing one's caller sees the error.
//!
//! # Durability
//! Replies are sent after `COMMIT` returned: a caller's `Ok` means its write is committed. A
//! failed `COMMIT` is every operation's error in that round (none of them is committed).
//!
//! # SQLite and PostgreSQL
//! On SQLite there is one writer (SQLite has one write connection anyway): on a file, a thread with
//! its own connection that runs each round synchronously while it holds the sqlx write connection
//! as a lock (`run_lite`, and `crate::sql` for why). On PostgreSQL,
//! [`BatchLimits::writers`] writers share the queue, so rounds overlap as single writes did;
//! claims there stay out of rounds (see `Store::claim_job`), since a round would hold the row
//! locks of several servers at once and rounds of several workers would deadlock on them.

use crate::jobs::{Claim, Finish};
use crate::output::{OutputChunk, PendingOutput};
use crate::sql::Conn;
use crate::{Backend, BatchRow, Result, StoreError};
use remora_domain::{Job, JobStatus};
use sqlx::AnyPool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

/// Bounds of one group-commit round; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// At most this many operations per transaction (`REMORA_STORE_BATCH_OPS`).
    pub max_ops: usize,
    /// At most this many bytes of output and job text per transaction, unless one operation
    /// alone is larger (`REMORA_STORE_BATCH_BYTES`).
    pub max_bytes: usize,
    /// Writers sharing the queue on PostgreSQL; SQLite always has one
    /// (`REMORA_STORE_BATCH_WRITERS`).
    pub writers: usize,
}

/// Default `max_ops`.
pub const BATCH_OPS: usize = 256;
/// Default `max_bytes` (4 MiB).
pub const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Default `writers`.
pub const BATCH_WRITERS: usize = 4;

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_ops: BATCH_OPS,
            max_bytes: BATCH_BYTES,
            writers: BATCH_WRITERS,
        }
    }
}

/// An audit row written in the transaction of the change it records.
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub token_id: Option<String>,
    pub action: String,
    pub object_type: String,
    pub object_id: Option<String>,
    pub detail: Option<String>,
}

/// What the writer runs.
pub(crate) enum Work {
    Claim {
        job_id: String,
        worker_id: String,
    },
    Append {
        job_id: String,
        chunks: Vec<OutputChunk>,
        stdout_bytes: i64,
        stderr_bytes: i64,
        truncated: bool,
    },
    Finish {
        job_id: String,
        worker_id: String,
        finish: Finish,
        output: Option<PendingOutput>,
    },
    Submit {
        batch: Option<BatchRow>,
        jobs: Vec<Job>,
        audit: Option<NewAudit>,
        /// A single job's server as the caller named it (id, else name), resolved in the
        /// transaction: the job goes to that server's id, or nothing is written
        /// (`Value::Server(None)`).
        resolve: Option<String>,
    },
    /// Move up to `limit` new jobs into SQLite's search index (`Store::index_search_backlog`).
    IndexSearch {
        limit: i64,
    },
}

/// What it answers.
#[derive(Debug)]
pub(crate) enum Value {
    Claim(Claim, Option<i64>),
    Unit,
    Final(Option<JobStatus>),
    Count(u64),
    /// The server a submission resolved (`Work::Submit::resolve`), if it exists.
    Server(Option<String>),
}

/// Why an operation did not apply. A refusal that wrote nothing (a lost claim, a finish of a
/// job not running on that worker) is not an error but the operation's answer (`Value`).
pub(crate) enum OpError {
    /// The database failed a statement, or the operation wrote what must not stay: the
    /// transaction must be rolled back.
    Broken(StoreError),
}

impl From<sqlx::Error> for OpError {
    fn from(e: sqlx::Error) -> Self {
        OpError::Broken(StoreError::Db(e))
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        OpError::Broken(e)
    }
}

impl OpError {
    pub(crate) fn into_store(self) -> StoreError {
        match self {
            OpError::Broken(e) => e,
        }
    }
}

/// The bytes output chunks carry, for `max_bytes`.
fn chunk_bytes(chunks: &[OutputChunk]) -> usize {
    chunks.iter().map(|c| c.data.len() + 32).sum()
}

impl Work {
    /// The bytes an operation carries, for `max_bytes`.
    fn bytes(&self) -> usize {
        match self {
            Work::Append { chunks, .. } => chunk_bytes(chunks),
            Work::Submit { jobs, .. } => jobs
                .iter()
                .map(|j| {
                    let f = remora_domain::JobSpecFields::from(j.spec.clone());
                    256 + f.command.map_or(0, |c| c.len())
                        + f.script.map_or(0, |s| s.len())
                        + f.args.iter().map(|a| a.len()).sum::<usize>()
                })
                .sum(),
            Work::Finish { output, .. } => {
                128 + output.as_ref().map_or(0, |o| chunk_bytes(&o.chunks))
            }
            Work::Claim { .. } => 128,
            Work::IndexSearch { limit } => 128 * (*limit).max(1) as usize,
        }
    }

    async fn run(&self, conn: &mut Conn<'_>, backend: Backend) -> Result<Value, OpError> {
        Ok(match self {
            Work::Claim { job_id, worker_id } => {
                let (c, g) = crate::jobs::claim_in(conn, backend, job_id, worker_id).await?;
                Value::Claim(c, g)
            }
            Work::Append {
                job_id,
                chunks,
                stdout_bytes,
                stderr_bytes,
                truncated,
            } => {
                crate::output::append_in(
                    conn,
                    job_id,
                    chunks,
                    *stdout_bytes,
                    *stderr_bytes,
                    *truncated,
                )
                .await?;
                Value::Unit
            }
            Work::Finish {
                job_id,
                worker_id,
                finish,
                output,
            } => Value::Final(
                crate::jobs::finish_in(conn, backend, job_id, worker_id, finish, output.as_ref())
                    .await?,
            ),
            Work::Submit {
                batch,
                jobs,
                audit,
                resolve,
            } => {
                let r = crate::jobs::submit_in(
                    conn,
                    batch.as_ref(),
                    jobs,
                    audit.as_ref(),
                    resolve.as_deref(),
                )
                .await?;
                match resolve {
                    Some(_) => Value::Server(r),
                    None => Value::Unit,
                }
            }
            Work::IndexSearch { limit } => {
                Value::Count(crate::jobs::index_search_in(conn, *limit).await?)
            }
        })
    }
}

struct Op {
    work: Work,
    reply: oneshot::Sender<Result<Value>>,
}

/// Rounds and operations so far (for tests and logs).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    rounds: AtomicU64,
    ops: AtomicU64,
    fallbacks: AtomicU64,
}

/// Group-commit totals of a store: rounds (transactions), operations in them, and rounds that
/// fell back to one transaction per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    pub rounds: u64,
    pub ops: u64,
    pub fallbacks: u64,
}

/// The sending side, shared by every clone of a `Store`.
pub(crate) struct Writer {
    tx: mpsc::Sender<Op>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Start the writer on the current runtime: on an SQLite file, one thread with its own
    /// connection (`sqlite_file`; see `crate::sql`); otherwise writer tasks on `pool`.
    pub(crate) fn start(
        pool: AnyPool,
        backend: Backend,
        limits: BatchLimits,
        sqlite_file: Option<String>,
    ) -> Result<Writer> {
        let limits = BatchLimits {
            max_ops: limits.max_ops.max(1),
            max_bytes: limits.max_bytes.max(1),
            writers: match backend {
                Backend::Sqlite => 1,
                Backend::Postgres => limits.writers.max(1),
            },
        };
        let (tx, rx) = mpsc::channel(limits.max_ops * 4);
        let counters = Arc::new(Counters::default());
        match (backend, sqlite_file) {
            (Backend::Sqlite, Some(file)) => {
                let conn = crate::sql::open_lite(&file)?;
                let rt = tokio::runtime::Handle::current();
                let counters = counters.clone();
                std::thread::Builder::new()
                    .name("remora-sqlite-writer".into())
                    .spawn(move || run_lite(conn, pool, rt, limits, rx, &counters))
                    .map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
            }
            _ => {
                let rx = Arc::new(Mutex::new(rx));
                for _ in 0..limits.writers {
                    tokio::spawn(run(
                        pool.clone(),
                        backend,
                        limits,
                        rx.clone(),
                        counters.clone(),
                    ));
                }
            }
        }
        Ok(Writer { tx, counters })
    }

    pub(crate) async fn submit(&self, work: Work) -> Result<Value> {
        let (reply, rx) = oneshot::channel();
        let stopped = || StoreError::Db(sqlx::Error::PoolClosed);
        self.tx
            .send(Op { work, reply })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            rounds: self.counters.rounds.load(Ordering::Relaxed),
            ops: self.counters.ops.load(Ordering::Relaxed),
            fallbacks: self.counters.fallbacks.load(Ordering::Relaxed),
        }
    }
}

async fn run(
    pool: AnyPool,
    backend: Backend,
    limits: BatchLimits,
    rx: Arc<Mutex<mpsc::Receiver<Op>>>,
    counters: Arc<Counters>,
) {
    // An operation that did not fit the last round's bytes opens the next one.
    let mut carry: Option<Op> = None;
    loop {
        let ops = {
            let mut rx = rx.lock().await;
            let first = match carry.take() {
                Some(op) => op,
                None => match rx.recv().await {
                    Some(op) => op,
                    None => return,
                },
            };
            gather(first, &mut rx, limits, &mut carry, &counters)
        };
        round(&pool, backend, ops, &counters).await;
    }
}

/// A round: `first`, then whatever else is queued within `limits`; an operation that does not
/// fit the bytes is left in `carry` for the next round.
fn gather(
    first: Op,
    rx: &mut mpsc::Receiver<Op>,
    limits: BatchLimits,
    carry: &mut Option<Op>,
    counters: &Counters,
) -> Vec<Op> {
    let mut bytes = first.work.bytes();
    let mut ops = vec![first];
    while ops.len() < limits.max_ops && bytes < limits.max_bytes {
        let Ok(op) = rx.try_recv() else { break };
        let b = op.work.bytes();
        if bytes + b > limits.max_bytes {
            *carry = Some(op);
            break;
        }
        bytes += b;
        ops.push(op);
    }
    counters.rounds.fetch_add(1, Ordering::Relaxed);
    counters.ops.fetch_add(ops.len() as u64, Ordering::Relaxed);
    ops
}

async fn round(pool: &AnyPool, backend: Backend, ops: Vec<Op>, counters: &Counters) {
    let ops = if ops.len() > 1 {
        let t = together(pool, backend, &ops).await;
        match answer(ops, t, counters) {
            Some(ops) => ops,
            None => return,
        }
    } else {
        ops
    };
    for op in ops {
        let r = alone(pool, backend, &op.work).await;
        let _ = op.reply.send(r);
    }
}

/// Answer the callers of a round run together; the operations to run again one by one when it
/// was rolled back.
fn answer(ops: Vec<Op>, t: Together, counters: &Counters) -> Option<Vec<Op>> {
    match t {
        Together::Committed(results) => {
            for (op, v) in ops.into_iter().zip(results) {
                let _ = op.reply.send(Ok(v));
            }
            None
        }
        Together::NotCommitted(e) => {
            let msg = e.to_string();
            for op in ops {
                let _ = op
                    .reply
                    .send(Err(StoreError::Db(sqlx::Error::Protocol(format!(
                        "the transaction this write shared did not commit: {msg}"
                    )))));
            }
            None
        }
        Together::RolledBack(e) => {
            counters.fallbacks.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(error = %e, ops = ops.len(), "a write failed; running the round's writes one by one");
            Some(ops)
        }
    }
}

enum Together {
    Committed(Vec<Value>),
    /// `COMMIT` (or `BEGIN`) failed: nothing of the round is committed.
    NotCommitted(StoreError),
    /// An operation failed the transaction; it was rolled back.
    RolledBack(StoreError),
}

async fn together(pool: &AnyPool, backend: Backend, ops: &[Op]) -> Together {
    let mut tx = match crate::begin_write(pool, backend).await {
        Ok(tx) => tx,
        Err(e) => return Together::NotCommitted(e.into()),
    };
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        match op.work.run(&mut Conn::Any(&mut tx), backend).await {
            Ok(v) => out.push(v),
            Err(OpError::Broken(e)) => {
                let _ = tx.rollback().await;
                return Together::RolledBack(e);
            }
        }
    }
    match tx.commit().await {
        Ok(()) => Together::Committed(out),
        Err(e) => Together::NotCommitted(e.into()),
    }
}

/// One operation in its own transaction (a round of one, or after a rollback).
async fn alone(pool: &AnyPool, backend: Backend, work: &Work) -> Result<Value> {
    let mut tx = crate::begin_write(pool, backend).await?;
    match work.run(&mut Conn::Any(&mut tx), backend).await {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e.into_store())
        }
    }
}

/// The writer of an SQLite file: a thread that owns its own connection and runs each round on
/// it synchronously, holding the store's sqlx write connection (`Gate`) meanwhile so that no
/// other write of the process runs beside it (see `crate::sql`).
fn run_lite(
    mut conn: rusqlite::Connection,
    pool: AnyPool,
    rt: tokio::runtime::Handle,
    limits: BatchLimits,
    mut rx: mpsc::Receiver<Op>,
    counters: &Counters,
) {
    // sqlx hands a released connection back to its pool on a task of this runtime.
    let _rt = rt.enter();
    let mut carry: Option<Op> = None;
    loop {
        let first = match carry.take() {
            Some(op) => op,
            None => match rx.blocking_recv() {
                Some(op) => op,
                None => return,
            },
        };
        let ops = gather(first, &mut rx, limits, &mut carry, counters);
        let gate = match rt.block_on(pool.acquire()) {
            Ok(gate) => gate,
            Err(e) => {
                let msg = e.to_string();
                for op in ops {
                    let _ = op
                        .reply
                        .send(Err(StoreError::Db(sqlx::Error::Protocol(format!(
                            "the write connection is not available: {msg}"
                        )))));
                }
                continue;
            }
        };
        round_lite(&mut conn, ops, counters);
        drop(gate);
    }
}

fn round_lite(conn: &mut rusqlite::Connection, ops: Vec<Op>, counters: &Counters) {
    let ops = if ops.len() > 1 {
        let t = together_lite(conn, &ops);
        match answer(ops, t, counters) {
            Some(ops) => ops,
            None => return,
        }
    } else {
        ops
    };
    for op in ops {
        let r = alone_lite(conn, &op.work);
        let _ = op.reply.send(r);
    }
}

/// End a transaction that did not commit, if it is still open.
fn rollback_lite(conn: &rusqlite::Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

fn together_lite(conn: &mut rusqlite::Connection, ops: &[Op]) -> Together {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return Together::NotCommitted(crate::sql::lite_err(e));
    }
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        match crate::sql::run_now(op.work.run(&mut Conn::Lite(conn), Backend::Sqlite)) {
            Ok(v) => out.push(v),
            Err(OpError::Broken(e)) => {
                rollback_lite(conn);
                return Together::RolledBack(e);
            }
        }
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => Together::Committed(out),
        Err(e) => {
            rollback_lite(conn);
            Together::NotCommitted(crate::sql::lite_err(e))
        }
    }
}

fn alone_lite(conn: &mut rusqlite::Connection, work: &Work) -> Result<Value> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(crate::sql::lite_err)?;
    match crate::sql::run_now(work.run(&mut Conn::Lite(conn), Backend::Sqlite)) {
        Ok(v) => match conn.execute_batch("COMMIT") {
            Ok(()) => Ok(v),
            Err(e) => {
                rollback_lite(conn);
                Err(crate::sql::lite_err(e))
            }
        },
        Err(e) => {
            rollback_lite(conn);
            Err(e.into_store())
        }
    }
}
