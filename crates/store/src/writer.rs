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
//! On SQLite there is one writer (SQLite has one write connection anyway). On PostgreSQL,
//! [`BatchLimits::writers`] writers share the queue, so rounds overlap as single writes did;
//! claims there stay out of rounds (see `Store::claim_job`), since a round would hold the row
//! locks of several servers at once and rounds of several workers would deadlock on them.

use crate::jobs::{Claim, Finish};
use crate::output::{OutputChunk, PendingOutput};
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
    },
}

/// What it answers.
#[derive(Debug)]
pub(crate) enum Value {
    Claim(Claim, Option<i64>),
    Unit,
    Final(Option<JobStatus>),
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
        }
    }

    async fn run(
        &self,
        conn: &mut sqlx::AnyConnection,
        backend: Backend,
    ) -> Result<Value, OpError> {
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
            Work::Submit { batch, jobs, audit } => {
                crate::jobs::submit_in(conn, batch.as_ref(), jobs, audit.as_ref()).await?;
                Value::Unit
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
    /// Start the writer tasks on the current runtime.
    pub(crate) fn start(pool: AnyPool, backend: Backend, limits: BatchLimits) -> Writer {
        let limits = BatchLimits {
            max_ops: limits.max_ops.max(1),
            max_bytes: limits.max_bytes.max(1),
            writers: match backend {
                Backend::Sqlite => 1,
                Backend::Postgres => limits.writers.max(1),
            },
        };
        let (tx, rx) = mpsc::channel(limits.max_ops * 4);
        let rx = Arc::new(Mutex::new(rx));
        let counters = Arc::new(Counters::default());
        for _ in 0..limits.writers {
            tokio::spawn(run(
                pool.clone(),
                backend,
                limits,
                rx.clone(),
                counters.clone(),
            ));
        }
        Writer { tx, counters }
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
        let mut ops = Vec::new();
        let mut bytes = 0;
        {
            let mut rx = rx.lock().await;
            let first = match carry.take() {
                Some(op) => op,
                None => match rx.recv().await {
                    Some(op) => op,
                    None => return,
                },
            };
            bytes += first.work.bytes();
            ops.push(first);
            while ops.len() < limits.max_ops && bytes < limits.max_bytes {
                let Ok(op) = rx.try_recv() else { break };
                let b = op.work.bytes();
                if bytes + b > limits.max_bytes {
                    carry = Some(op);
                    break;
                }
                bytes += b;
                ops.push(op);
            }
        }
        counters.rounds.fetch_add(1, Ordering::Relaxed);
        counters.ops.fetch_add(ops.len() as u64, Ordering::Relaxed);
        round(&pool, backend, ops, &counters).await;
    }
}

async fn round(pool: &AnyPool, backend: Backend, ops: Vec<Op>, counters: &Counters) {
    if ops.len() > 1 {
        match together(pool, backend, &ops).await {
            Together::Committed(results) => {
                for (op, v) in ops.into_iter().zip(results) {
                    let _ = op.reply.send(Ok(v));
                }
                return;
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
                return;
            }
            Together::RolledBack(e) => {
                counters.fallbacks.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, ops = ops.len(), "a write failed; running the round's writes one by one");
            }
        }
    }
    for op in ops {
        let r = alone(pool, backend, &op.work).await;
        let _ = op.reply.send(r);
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
        match op.work.run(&mut tx, backend).await {
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
    match work.run(&mut tx, backend).await {
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
