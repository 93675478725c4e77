//! Work the API does in the background: push new jobs to the queue (and
//! re-push every job the database still holds as `queued`, so a lost queue
//! or an outage loses nothing), reap jobs of workers that stopped
//! heartbeating, and fan pub/sub events out to SSE clients. Every piece is
//! idempotent, so several API instances on one database may all run them.

use crate::AppState;
use remora_domain::{ErrorCode, Job, JobEvent, JobStatus, QueuedJob, JOBS_QUEUE};
use remora_netqueue::client::Push;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// Push a submission's jobs after its answer: the database already holds them (a 201 is
/// given only after COMMIT), so the request does not wait for the queue's round trips. A push
/// that fails wakes the reconciler, which pushes every job still `queued`.
pub fn push_jobs_in_background(state: &AppState, jobs: &[Job]) {
    let state = state.clone();
    let jobs: Vec<Job> = jobs.to_vec();
    tokio::spawn(async move {
        futures::future::join_all(jobs.iter().map(|j| push_job(&state, j))).await;
    });
}

/// Push one job; on failure it stays `queued` in the database and the
/// reconciler pushes it later.
pub async fn push_job(state: &AppState, job: &Job) {
    let m = JobEvent::new(&job.id, JobStatus::Queued, None).message();
    // The event and the push, side by side: neither waits for the other's round trip.
    let (_, pushed) = tokio::join!(
        state.queue.publish(&m.topic, m.payload.into()),
        push(state, &job.id, &job.server_id, job.priority)
    );
    if let Err(e) = pushed {
        warn!(job_id = %job.id, error = %e, "queue unavailable; the job stays queued in the database and will be pushed when it returns");
        state.push_wake.notify_one();
    }
}

async fn push(
    state: &AppState,
    id: &str,
    server_id: &str,
    priority: i64,
) -> Result<(), remora_netqueue::client::ClientError> {
    let payload = serde_json::to_vec(&QueuedJob {
        job_id: id.to_string(),
        server_id: server_id.to_string(),
    })
    .unwrap_or_default();
    // The server id is the affinity key: the queue hands the job to the worker that already
    // holds a connection to that server (docs/netqueue-protocol.md, "Affinity").
    state
        .queue
        .push(
            Push::new(JOBS_QUEUE, id, payload)
                .priority(priority.clamp(1, 10) as u8)
                // A key over the protocol's name limit would refuse the push: go without.
                .affinity(
                    if server_id.len() <= remora_netqueue::protocol::MAX_NAME_LEN {
                        server_id
                    } else {
                        ""
                    },
                ),
        )
        .await
        .map(|_| ())
}

/// Jobs the reconciler reads per page, and pushes at once (the queue client pipelines them on
/// its connection).
pub const RECONCILE_PAGE: i64 = 1000;
/// Most jobs one reconciler pass pushes; the next pass (at the latest `REMORA_RECONCILE_INTERVAL`
/// later) starts from the oldest again.
pub const RECONCILE_MAX_PER_PASS: usize = 100_000;

/// Push every `queued` job again (the queue drops duplicates by job id), oldest first, a page
/// at a time, each page's pushes side by side.
pub async fn reconcile_once(state: &AppState) -> usize {
    reconcile_pages(state, RECONCILE_PAGE, RECONCILE_MAX_PER_PASS).await
}

pub(crate) async fn reconcile_pages(state: &AppState, page: i64, max: usize) -> usize {
    let mut pushed = 0;
    let mut after: Option<remora_store::QueuedRef> = None;
    while pushed < max {
        let jobs = match state.store.queued_jobs_after(after.as_ref(), page).await {
            Ok(j) => j,
            Err(e) => {
                warn!(error = %e, "reconciler could not read queued jobs");
                return pushed;
            }
        };
        let Some(last) = jobs.last().cloned() else {
            break;
        };
        let full = jobs.len() as i64 == page;
        let results = futures::future::join_all(
            jobs.iter()
                .map(|q| push(state, &q.id, &q.server_id, q.priority)),
        )
        .await;
        for r in results {
            match r {
                Ok(()) => pushed += 1,
                Err(e) => {
                    warn!(error = %e, "reconciler could not reach the queue");
                    return pushed;
                }
            }
        }
        if !full {
            break;
        }
        after = Some(last);
    }
    pushed
}

/// The reaper's view of the database: workers cannot heartbeat while it
/// refuses writes, so after an outage (and after this API starts) nobody is
/// marked down until the database has taken writes for a whole
/// `worker_down_after` — a 60 s outage must not end every running job as
/// `worker_lost`.
pub struct Reaper {
    /// Since when every probe succeeded; `None` while the database fails.
    writable_since: Option<std::time::Instant>,
}

impl Default for Reaper {
    fn default() -> Self {
        Self::new()
    }
}

impl Reaper {
    pub fn new() -> Reaper {
        Reaper {
            writable_since: Some(std::time::Instant::now()),
        }
    }

    /// One pass: probe, then reap if the database has been writable long
    /// enough. Returns the jobs ended.
    pub async fn pass(&mut self, state: &AppState) -> usize {
        if let Err(e) = state.store.probe_write().await {
            if self.writable_since.take().is_some() {
                warn!(error = %e, "the database refuses writes; the reaper waits until it has taken them for worker_down_after");
            }
            return 0;
        }
        let since = *self
            .writable_since
            .get_or_insert_with(std::time::Instant::now);
        if since.elapsed() < state.cfg.worker_down_after {
            return 0;
        }
        reap_once(state).await
    }
}

/// End the jobs of workers that stopped heartbeating.
pub async fn reap_once(state: &AppState) -> usize {
    // Compared on the database's clock, as heartbeats are written: no clock skew between hosts.
    match state
        .store
        .mark_silent_workers(state.cfg.worker_down_after)
        .await
    {
        Ok(ids) => {
            for id in ids {
                warn!(worker_id = %id, "worker missed its heartbeats; marked down");
                // This instance's UPDATE marked it down: the event is reported once.
                let ev =
                    remora_notify::payload::worker_down_event(&id, remora_domain::time::now_ms());
                let window = state.cfg.notify.retry_window.as_millis() as i64;
                if let Err(e) = state.store.notify_event(&ev, window).await {
                    warn!(error = %e, "recording the worker.down notification failed");
                }
            }
        }
        Err(e) => warn!(error = %e, "reaper could not check workers"),
    }
    let orphans = state.store.orphaned_jobs().await.unwrap_or_default();
    let mut n = 0;
    for (job_id, worker) in orphans {
        let worker = worker.unwrap_or_else(|| "unknown".into());
        let msg = format!("worker {worker} stopped heartbeating while running this job; its remote processes are killed by the job wrapper when the SSH session drops");
        if let Ok(true) = state
            .store
            .force_finish(
                &job_id,
                JobStatus::Failed,
                &msg,
                ErrorCode::WorkerLost.as_str(),
            )
            .await
        {
            n += 1;
            info!(job_id = %job_id, worker_id = %worker, "job of a lost worker ended as failed");
            let m = JobEvent::new(&job_id, JobStatus::Failed, None).message();
            let _ = state.queue.publish(&m.topic, m.payload.into()).await;
        }
    }
    n
}

/// How often the API moves new jobs into SQLite's search index.
pub const SEARCH_INDEX_INTERVAL: Duration = Duration::from_secs(1);

pub fn spawn_all(tracker: &TaskTracker, state: AppState, shutdown: CancellationToken) {
    // Notifications (dispatcher + sender) and retention/compression.
    remora_notify::spawn(
        tracker,
        state.store.clone(),
        state.vault.clone(),
        state.cfg.notify.clone(),
        shutdown.clone(),
    );
    tracker.spawn(remora_store::maintenance::run(
        state.store.clone(),
        state.cfg.maintenance.clone(),
        shutdown.clone(),
    ));
    // SQLite's search indexer: new jobs wait in a backlog, which searches read directly, and
    // are moved into the search index in batches (docs/jobs.md, "Search").
    if state.store.backend() == remora_store::Backend::Sqlite {
        let store = state.store.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            loop {
                if let Err(e) = store.index_search_backlog().await {
                    warn!(error = %e, "search indexer: will try again");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(SEARCH_INDEX_INTERVAL) => {}
                }
            }
        });
    }
    // Reconciler: at start, when a push failed, when the queue connection is re-established (a
    // restarted or standby queue may not hold what the database has queued), and every
    // `reconcile_interval`.
    {
        let state = state.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let mut changes = state.queue.connection_changes();
            changes.borrow_and_update();
            loop {
                let n = reconcile_once(&state).await;
                if n > 0 {
                    tracing::debug!(pushed = n, "reconciler pushed queued jobs");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(state.cfg.reconcile_interval) => {}
                    Ok(()) = changes.changed() => {
                        changes.borrow_and_update();
                        info!(queue = state.queue.active_addr().unwrap_or_default(), failovers = state.queue.failovers(), "queue connection re-established; pushing the queued jobs again");
                    }
                    _ = state.push_wake.notified() => {
                        // A push just failed: retry soon, not in a tight loop.
                        tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(Duration::from_secs(1)) => {} }
                    }
                }
            }
        });
    }
    // Scheduler (crate::schedules): due times claimed in the database, so every instance runs it.
    tracker.spawn(crate::schedules::run(state.clone(), shutdown.clone()));
    // Reaper.
    {
        let state = state.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            let mut reaper = Reaper::new();
            loop {
                tokio::select! { _ = shutdown.cancelled() => return, _ = tick.tick() => {} }
                reaper.pass(&state).await;
            }
        });
    }
    // Pub/sub fan-out to SSE clients.
    tracker.spawn(async move {
        loop {
            match state.queue.subscribe(vec!["*".to_string()]).await {
                Ok(mut sub) => loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        ev = sub.next() => match ev {
                            Some(ev) => state.live.dispatch(&ev),
                            None => break,
                        }
                    }
                },
                Err(e) => warn!(error = %e, "event subscription failed; retrying"),
            }
            tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(Duration::from_secs(1)) => {} }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reconciler pages through every queued job (pages of 4 over 25, with ties on
    /// `created_at`) into a real queue; a second pass pushes them again and the queue keeps
    /// one of each; `max` stops a pass at the page that reaches it.
    #[tokio::test]
    async fn reconciler_pages_every_queued_job_into_the_queue() {
        let (state, _dir) = crate::tests::state_with(crate::ApiConfig::default(), &[]).await;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let stop = CancellationToken::new();
        let q = tokio::spawn(remora_netqueue::run(
            l,
            remora_netqueue::ServerConfig::default(),
            stop.clone(),
        ));
        let queue = remora_netqueue::Client::connect(&addr, None).await.unwrap();
        let state = AppState {
            queue: queue.clone(),
            ..state
        };
        let srv = state
            .store
            .insert_server(&remora_store::NewServer {
                name: "r".into(),
                hostname: "127.0.0.1".into(),
                port: 22,
                user: "u".into(),
                is_active: true,
                max_concurrency: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        for i in 0..25 {
            let job = Job {
                created_at: 1_000 + i / 3,
                ..Job::queued(
                    remora_domain::JobSpec::Command {
                        command: "true".into(),
                        args: vec![],
                    },
                    srv.id.clone(),
                )
            };
            state.store.insert_job(&job).await.unwrap();
        }
        let ready = || async {
            queue
                .stats()
                .await
                .unwrap()
                .queues
                .get(JOBS_QUEUE)
                .map_or(0, |s| s.ready)
        };
        assert_eq!(reconcile_pages(&state, 4, 100_000).await, 25);
        assert_eq!(ready().await, 25);
        assert_eq!(reconcile_pages(&state, 4, 100_000).await, 25);
        assert_eq!(ready().await, 25, "pushed again, kept once");
        assert_eq!(
            reconcile_pages(&state, 4, 10).await,
            12,
            "three pages reach 10"
        );
        stop.cancel();
        let _ = q.await;
    }
}
