//! remora-worker: reserves jobs from the queue, runs them over SSH, streams
//! their output into the database, and honours cancel and timeout.

pub mod config;
pub mod exec;
pub mod metrics;
pub mod sink;

use anyhow::Context;
use remora_domain::events::{self, TOPIC_CANCEL};
use remora_domain::{JobEvent, JobStatus, QueuedJob, JOBS_QUEUE};
use remora_netqueue::client::Client;
use remora_ssh::{Pool, SshConfig};
use remora_store::{Claim, Store, Vault, WorkerRow};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, instrument, warn};

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub id: String,
    /// Jobs this worker runs at once (`REMORA_WORKER_CONCURRENCY`).
    pub concurrency: usize,
    /// Per-job cap on stored output, stdout and stderr together.
    pub output_cap: u64,
    /// Flush buffered output at least this often...
    pub flush_interval: Duration,
    /// ...or once this many lines are buffered.
    pub flush_lines: usize,
    /// Between TERM and KILL on cancel/timeout.
    pub kill_grace: Duration,
    pub heartbeat_interval: Duration,
    /// Queue lease; extended (TOUCH) while the job runs.
    pub lease: Duration,
    /// Retry delay base for connection-level failures (doubles per attempt).
    pub retry_backoff: Duration,
    /// On shutdown, how long running jobs may finish before being canceled.
    pub drain_timeout: Duration,
    pub ssh: SshConfig,
}

/// Pub/sub topic on which a worker id asks that worker to drain (as on
/// SIGTERM: stop reserving, let running jobs finish up to the drain timeout,
/// cancel the rest, exit).
pub const TOPIC_DRAIN: &str = events::TOPIC_DRAIN;

/// Delay before a job whose connection failed is tried again: `base`
/// doubled per attempt already made (1 s, 2 s, 4 s …), at most 64 × `base`.
pub fn retry_delay(base: Duration, attempt: i64) -> Duration {
    let doublings = attempt.clamp(1, 7) - 1;
    base * (1u32 << doublings)
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            id: format!("worker-{}", &remora_domain::new_id()[24..]),
            concurrency: 16,
            output_cap: 16 * 1024 * 1024,
            flush_interval: Duration::from_secs(2),
            flush_lines: 10,
            kill_grace: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(5),
            lease: Duration::from_secs(30),
            retry_backoff: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(30),
            ssh: SshConfig::default(),
        }
    }
}

/// How long one reserve request waits for a job; also bounds how long an
/// idle worker takes to stop.
const RESERVE_WAIT: Duration = Duration::from_secs(2);

/// Most jobs one reserve asks for (bounded by the free slots).
const RESERVE_BATCH: usize = 32;

/// Everything a job task needs.
pub struct Ctx {
    pub store: Store,
    pub vault: Vault,
    pub queue: Client,
    pub pool: Pool,
    pub cfg: WorkerConfig,
    /// Cancel tokens of the jobs running here, by job id.
    pub running: Mutex<HashMap<String, CancellationToken>>,
    /// Connection targets by server, while nothing they are made from changed.
    pub targets: exec::TargetCache,
    pub metrics: metrics::Metrics,
    /// Shutting down: no more reserves.
    pub draining: AtomicBool,
    /// The drain timeout ran out and the remaining jobs are being canceled.
    pub drain_expired: AtomicBool,
}

impl Ctx {
    pub async fn publish_status(&self, job_id: &str, status: JobStatus, exit_code: Option<i64>) {
        let m = JobEvent::new(job_id, status, exit_code).message();
        let _ = self.queue.publish(&m.topic, m.payload.into()).await;
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Run the worker until `shutdown` (or a drain request on [`TOPIC_DRAIN`]),
/// then drain.
pub async fn run(
    store: Store,
    vault: Vault,
    queue: Client,
    cfg: WorkerConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with(store, vault, queue, cfg, None, shutdown).await
}

/// [`run`], also serving `GET /metrics` on `metrics` when given.
pub async fn run_with(
    store: Store,
    vault: Vault,
    queue: Client,
    cfg: WorkerConfig,
    metrics: Option<tokio::net::TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let now = remora_domain::time::now_ms();
    store
        .register_worker(&WorkerRow {
            id: cfg.id.clone(),
            hostname: hostname(),
            version: remora_domain::VERSION.to_string(),
            concurrency: cfg.concurrency as i64,
            running: 0,
            started_at: now,
            last_heartbeat_at: now,
            status: "up".into(),
        })
        .await
        .context("registering the worker")?;
    info!(worker_id = %cfg.id, concurrency = cfg.concurrency, "worker started");
    let ctx = Arc::new(Ctx {
        store,
        vault,
        queue,
        pool: Pool::new(cfg.ssh.clone()),
        cfg,
        running: Mutex::new(HashMap::new()),
        targets: exec::TargetCache::default(),
        metrics: metrics::Metrics::new(),
        draining: AtomicBool::new(false),
        drain_expired: AtomicBool::new(false),
    });
    let tracker = TaskTracker::new();
    // Job tasks only, so the drain can wait for exactly them.
    let jobs = TaskTracker::new();
    let bg = CancellationToken::new();
    // Stops reserving: the caller's shutdown or a drain request.
    let stop = shutdown.child_token();
    if let Some(l) = metrics {
        info!(addr = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(), "metrics endpoint listening");
        tracker.spawn(metrics::serve(l, ctx.clone(), bg.clone()));
    }

    // Cancel notifications: the API publishes the job id on TOPIC_CANCEL;
    // drain requests: a worker id on TOPIC_DRAIN.
    {
        let ctx = ctx.clone();
        let bg = bg.clone();
        let stop = stop.clone();
        tracker.spawn(async move {
            loop {
                let mut sub = match ctx.queue.subscribe(vec![TOPIC_CANCEL.to_string(), TOPIC_DRAIN.to_string()]).await {
                    Ok(s) => s,
                    Err(e) => {
                        warn!(error = %e, "cancel subscription failed; retrying");
                        tokio::select! { _ = bg.cancelled() => return, _ = tokio::time::sleep(Duration::from_secs(1)) => continue }
                    }
                };
                loop {
                    tokio::select! {
                        _ = bg.cancelled() => return,
                        ev = sub.next() => match ev {
                            Some(ev) if ev.topic == TOPIC_DRAIN => {
                                if events::decode_id(&ev.payload) == ctx.cfg.id && !stop.is_cancelled() {
                                    info!("drain requested");
                                    stop.cancel();
                                }
                            }
                            Some(ev) => {
                                let id = events::decode_id(&ev.payload);
                                if let Some(t) = ctx.running.lock().ok().and_then(|m| m.get(&id).cloned()) {
                                    info!(job_id = %id, "cancel requested");
                                    t.cancel();
                                }
                            }
                            None => break,
                        }
                    }
                }
            }
        });
    }

    // Heartbeat, and a safety net for a missed cancel notification: ask the
    // database about the jobs running here (only those) each beat.
    {
        let ctx = ctx.clone();
        let bg = bg.clone();
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(ctx.cfg.heartbeat_interval);
            loop {
                tokio::select! { _ = bg.cancelled() => return, _ = tick.tick() => {} }
                let running: Vec<(String, CancellationToken)> = ctx
                    .running
                    .lock()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                let status = if ctx.draining.load(Ordering::Relaxed) {
                    "draining"
                } else {
                    "up"
                };
                if let Err(e) = ctx
                    .store
                    .heartbeat_worker(&ctx.cfg.id, running.len() as i64, status)
                    .await
                {
                    warn!(error = %e, "heartbeat failed");
                }
                for (id, tok) in running {
                    if let Ok(true) = ctx.store.is_cancel_requested(&id).await {
                        tok.cancel();
                    }
                }
                let (_, gone) = ctx
                    .pool
                    .expire_idle_keys(ctx.cfg.ssh.idle_timeout, ctx.cfg.ssh.max_idle)
                    .await;
                // Servers with no pooled connection left: the queue stops holding their jobs
                // for this worker.
                for keys in gone.chunks(remora_netqueue::protocol::MAX_RELEASE_KEYS) {
                    if let Err(e) = ctx.queue.release(&ctx.cfg.id, false, keys.to_vec()).await {
                        warn!(error = %e, "could not tell the queue which connections closed");
                    }
                }
            }
        });
    }

    let slots = Arc::new(Semaphore::new(ctx.cfg.concurrency.max(1)));
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => break,
            p = slots.clone().acquire_many_owned(1) => p.expect("semaphore never closed"),
        };
        // Free slots beyond this one are reserved in the same round trip (up to
        // RESERVE_BATCH): a worker holding connections to many servers takes their held jobs
        // at once rather than one round trip each.
        let mut permit = permit;
        let extra = slots.available_permits().min(RESERVE_BATCH - 1) as u32;
        if extra > 0 {
            if let Ok(more) = slots.clone().try_acquire_many_owned(extra) {
                permit.merge(more);
            }
        }
        let max = permit.num_permits() as u32;
        let reserve = {
            let queue = ctx.queue.clone();
            let lease = ctx.cfg.lease;
            let consumer = ctx.cfg.id.clone();
            // As this worker's id: jobs of servers it holds a connection to come here first
            // (the API pushes each job with its server id as the affinity key).
            async move {
                queue
                    .reserve_as(&consumer, &[JOBS_QUEUE], max, RESERVE_WAIT, lease)
                    .await
            }
        };
        let mut reserve = Box::pin(reserve);
        let deliveries = tokio::select! {
            r = &mut reserve => r,
            _ = stop.cancelled() => {
                // The queue may already have leased us a message: let the
                // reserve answer (within RESERVE_WAIT) and hand it back at
                // once instead of letting its lease run out.
                let ctx = ctx.clone();
                tracker.spawn(async move {
                    if let Ok(ds) = reserve.await {
                        for d in ds {
                            let _ = ctx.queue.nack(&d.queue, &d.id, d.lease_id, Duration::ZERO).await;
                        }
                    }
                });
                break;
            }
        };
        let deliveries = match deliveries {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "reserve failed; retrying");
                tokio::select! { _ = stop.cancelled() => break, _ = tokio::time::sleep(Duration::from_secs(1)) => {} }
                continue;
            }
        };
        // One slot per delivery; the slots of messages not delivered go back.
        let mut parts = Vec::with_capacity(permit.num_permits());
        while permit.num_permits() > 1 {
            parts.extend(permit.split(1));
        }
        parts.push(permit);
        for (d, p) in deliveries.into_iter().zip(parts) {
            let ctx = ctx.clone();
            jobs.spawn(async move {
                handle_delivery(ctx, d).await;
                drop(p);
            });
        }
    }

    // Drain: no more reserves; give running jobs `drain_timeout`, then cancel.
    ctx.draining.store(true, Ordering::Relaxed);
    // Nothing more is reserved here: jobs of the servers this worker holds connections to go
    // to the other workers without waiting out the affinity hold.
    let _ = ctx.queue.release(&ctx.cfg.id, true, Vec::new()).await;
    let running = ctx.running.lock().map(|m| m.len()).unwrap_or(0);
    info!(
        running,
        drain_timeout_s = ctx.cfg.drain_timeout.as_secs(),
        "worker draining"
    );
    let _ = ctx
        .store
        .heartbeat_worker(&ctx.cfg.id, running as i64, "draining")
        .await;
    jobs.close();
    if tokio::time::timeout(ctx.cfg.drain_timeout, jobs.wait())
        .await
        .is_err()
    {
        ctx.drain_expired.store(true, Ordering::Relaxed);
        let toks: Vec<_> = ctx
            .running
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        warn!(
            jobs = toks.len(),
            "drain timeout ran out; canceling the remaining jobs"
        );
        for t in toks {
            t.cancel();
        }
        jobs.wait().await;
    }
    bg.cancel();
    tracker.close();
    tracker.wait().await;
    let _ = ctx.store.heartbeat_worker(&ctx.cfg.id, 0, "stopped").await;
    info!("worker stopped");
    Ok(())
}

#[instrument(skip_all, fields(job_id))]
async fn handle_delivery(ctx: Arc<Ctx>, d: remora_netqueue::Delivery) {
    let msg: QueuedJob = match serde_json::from_slice(&d.payload) {
        Ok(m) => m,
        Err(e) => {
            warn!(error = %e, id = %d.id, "unreadable queue message; dropping it");
            let _ = ctx.queue.ack(&d.queue, &d.id, d.lease_id).await;
            return;
        }
    };
    tracing::Span::current().record("job_id", msg.job_id.as_str());
    // The job's cancel token goes in before the claim: a cancel that comes after the claim then
    // always finds it, without a read of `cancel_requested` per job. A second copy of a job
    // already running here registers nothing (and its claim finds the job not queued).
    let token = CancellationToken::new();
    let registered = ctx
        .running
        .lock()
        .map(|mut m| match m.entry(msg.job_id.clone()) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(token.clone());
                true
            }
            std::collections::hash_map::Entry::Occupied(_) => false,
        })
        .unwrap_or(false);
    let unregister = || {
        if registered {
            if let Ok(mut m) = ctx.running.lock() {
                m.remove(&msg.job_id);
            }
        }
    };
    let (claim, generation) = match ctx.store.claim_job_gen(&msg.job_id, &ctx.cfg.id).await {
        Ok((c, g)) => (Ok(c), g),
        Err(e) => (Err(e), None),
    };
    let drained = ctx.drain_expired.load(Ordering::Relaxed);
    if !matches!(claim, Ok(Claim::Claimed(_))) || drained {
        unregister();
    }
    match claim {
        Ok(Claim::Claimed(job)) if drained => {
            // Claimed just as the drain ran out: hand it to another worker.
            let _ = ctx
                .store
                .requeue_job(
                    &job.id,
                    &ctx.cfg.id,
                    "the worker shut down before the command started",
                )
                .await;
            let _ = ctx
                .queue
                .nack(&d.queue, &d.id, d.lease_id, Duration::ZERO)
                .await;
        }
        Ok(Claim::Claimed(job)) => {
            let outcome =
                exec::run_job(&ctx, *job, &d, registered.then_some(token), generation).await;
            match outcome {
                exec::Outcome::Done => {
                    let _ = ctx.queue.ack(&d.queue, &d.id, d.lease_id).await;
                }
                exec::Outcome::Retry(delay) => {
                    ctx.metrics.retries.inc();
                    retry_later(&ctx, &d, &msg.server_id, delay).await;
                }
            }
        }
        Ok(Claim::Busy) => {
            // The server is at max_concurrency: the job waits in the queue.
            retry_later(&ctx, &d, &msg.server_id, Duration::from_millis(500)).await;
        }
        Ok(Claim::NotQueued) => {
            // Already running or ended (a copy re-pushed after a queue failover, or a lease that
            // ran out while the job ran): dropped without running.
            ctx.metrics.dropped_not_queued.inc();
            let _ = ctx.queue.ack(&d.queue, &d.id, d.lease_id).await;
        }
        Err(e) => {
            warn!(error = %e, "claiming the job failed; it goes back to the queue");
            retry_later(&ctx, &d, &msg.server_id, Duration::from_secs(1)).await;
        }
    }
}

/// Hands a delivery back to the queue, deliverable again after `delay`. If the NACK fails — the
/// queue it came from died and the client moved to a standby that never leased it — the job is
/// pushed again on the queue the client is on now, so it does not wait for the API's reconciler
/// (the database still holds it `queued`; the claim keeps a second copy from running it twice).
async fn retry_later(ctx: &Ctx, d: &remora_netqueue::Delivery, server_id: &str, delay: Duration) {
    if ctx
        .queue
        .nack(&d.queue, &d.id, d.lease_id, delay)
        .await
        .is_ok()
    {
        return;
    }
    let push = remora_netqueue::Push::new(d.queue.clone(), d.id.clone(), d.payload.clone())
        .priority(d.priority)
        .delay(delay)
        // Keyed by server as the API pushes it (docs/jobs.md, "Several workers").
        .affinity(
            if server_id.len() <= remora_netqueue::protocol::MAX_NAME_LEN {
                server_id
            } else {
                ""
            },
        );
    if let Err(e) = ctx.queue.push(push).await {
        warn!(error = %e, id = %d.id, "could not hand the job back to the queue; the API's reconciler pushes it again");
    }
}

#[cfg(test)]
mod tests {
    use super::retry_delay;
    use std::time::Duration;

    #[test]
    fn retry_delay_doubles_from_the_base_and_stops_at_64x() {
        let b = Duration::from_secs(1);
        let got: Vec<u64> = (1..=9).map(|a| retry_delay(b, a).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 64, 64, 64]);
        assert_eq!(
            retry_delay(b, 0),
            b,
            "a job never claimed counts as the first attempt"
        );
        assert_eq!(retry_delay(b, i64::MAX).as_secs(), 64);
        assert_eq!(
            retry_delay(Duration::from_millis(100), 3),
            Duration::from_millis(400)
        );
    }
}
