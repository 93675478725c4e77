//! remora-worker: reserves jobs from the queue, runs them over SSH, streams
//! their output into the database, and honours cancel and timeout.

pub mod config;
pub mod exec;
pub mod sink;

use anyhow::Context;
use remora_domain::{JobEvent, JobStatus, QueuedJob, JOBS_QUEUE, TOPIC_CANCEL, TOPIC_STATUS};
use remora_netqueue::client::Client;
use remora_ssh::{Pool, SshConfig};
use remora_store::{Claim, Store, Vault, WorkerRow};
use std::collections::HashMap;
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

/// Everything a job task needs.
pub struct Ctx {
    pub store: Store,
    pub vault: Vault,
    pub queue: Client,
    pub pool: Pool,
    pub cfg: WorkerConfig,
    /// Cancel tokens of the jobs running here, by job id.
    pub running: Mutex<HashMap<String, CancellationToken>>,
}

impl Ctx {
    pub async fn publish_status(&self, job_id: &str, status: JobStatus, exit_code: Option<i64>) {
        let ev = JobEvent { job_id: job_id.to_string(), status, exit_code };
        if let Ok(b) = serde_json::to_vec(&ev) {
            let _ = self.queue.publish(TOPIC_STATUS, b.into()).await;
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

/// Run the worker until `shutdown`, then drain.
pub async fn run(store: Store, vault: Vault, queue: Client, cfg: WorkerConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
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
    });
    let tracker = TaskTracker::new();
    let bg = CancellationToken::new();

    // Cancel notifications: the API publishes the job id on TOPIC_CANCEL.
    {
        let ctx = ctx.clone();
        let bg = bg.clone();
        tracker.spawn(async move {
            loop {
                let mut sub = match ctx.queue.subscribe(vec![TOPIC_CANCEL.to_string()]).await {
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
                            Some(ev) => {
                                let id = String::from_utf8_lossy(&ev.payload).to_string();
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
                if let Err(e) = ctx.store.heartbeat_worker(&ctx.cfg.id, running.len() as i64, "up").await {
                    warn!(error = %e, "heartbeat failed");
                }
                for (id, tok) in running {
                    if let Ok(true) = ctx.store.is_cancel_requested(&id).await {
                        tok.cancel();
                    }
                }
                ctx.pool.expire_idle(Duration::from_secs(60)).await;
            }
        });
    }

    let slots = Arc::new(Semaphore::new(ctx.cfg.concurrency.max(1)));
    let queues = [JOBS_QUEUE];
    'outer: loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = slots.clone().acquire_many_owned(1) => p.expect("semaphore never closed"),
        };
        let deliveries = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = ctx.queue.reserve(&queues, 1, Duration::from_secs(5), ctx.cfg.lease) => r,
        };
        let deliveries = match deliveries {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "reserve failed; retrying");
                tokio::select! { _ = shutdown.cancelled() => break 'outer, _ = tokio::time::sleep(Duration::from_secs(1)) => {} }
                continue;
            }
        };
        let mut permit = Some(permit);
        for d in deliveries {
            let ctx = ctx.clone();
            let p = permit.take();
            tracker.spawn(async move {
                handle_delivery(ctx, d).await;
                drop(p);
            });
        }
    }

    // Drain: no more reserves; give running jobs `drain_timeout`, then cancel.
    info!(running = ctx.running.lock().map(|m| m.len()).unwrap_or(0), "worker draining");
    let drain = async {
        loop {
            if ctx.running.lock().map(|m| m.is_empty()).unwrap_or(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    if tokio::time::timeout(ctx.cfg.drain_timeout, drain).await.is_err() {
        let toks: Vec<_> = ctx.running.lock().map(|m| m.values().cloned().collect()).unwrap_or_default();
        for t in toks {
            t.cancel();
        }
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
    match ctx.store.claim_job(&msg.job_id, &ctx.cfg.id).await {
        Ok(Claim::Claimed(job)) => {
            let outcome = exec::run_job(&ctx, *job, &d).await;
            match outcome {
                exec::Outcome::Done => {
                    let _ = ctx.queue.ack(&d.queue, &d.id, d.lease_id).await;
                }
                exec::Outcome::Retry(delay) => {
                    let _ = ctx.queue.nack(&d.queue, &d.id, d.lease_id, delay).await;
                }
            }
        }
        Ok(Claim::Busy) => {
            // The server is at max_concurrency: the job waits in the queue.
            let _ = ctx.queue.nack(&d.queue, &d.id, d.lease_id, Duration::from_millis(500)).await;
        }
        Ok(Claim::NotQueued) => {
            let _ = ctx.queue.ack(&d.queue, &d.id, d.lease_id).await;
        }
        Err(e) => {
            warn!(error = %e, "claiming the job failed; it goes back to the queue");
            let _ = ctx.queue.nack(&d.queue, &d.id, d.lease_id, Duration::from_secs(1)).await;
        }
    }
}
