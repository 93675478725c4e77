//! The dispatcher task: turns finished jobs (and the batches they complete) into deliveries, claiming each job once in the database.

use crate::{payload, NotifyConfig};
use remora_domain::Job;
use remora_store::notifications::job_event;
use remora_store::{NotifyEvent, Store};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Jobs claimed per transaction.
const BATCH: i64 = 500;

/// One round: claim up to `BATCH` finished jobs and create their
/// deliveries. Returns how many jobs were claimed here.
pub async fn dispatch_once(store: &Store, cfg: &NotifyConfig) -> remora_store::Result<usize> {
    let jobs = store.undispatched_jobs(BATCH).await?;
    if jobs.is_empty() {
        return Ok(0);
    }
    let targets: Vec<_> = store
        .list_targets()
        .await?
        .into_iter()
        .filter(|t| t.enabled)
        .collect();
    // Server names and tags, and batch outcomes, read before the write transaction.
    let mut servers: HashMap<String, (String, Vec<String>)> = HashMap::new();
    let mut batches: HashMap<String, Option<(bool, i64)>> = HashMap::new();
    // Template names (a target's template filter names templates).
    let mut templates: HashMap<String, String> = HashMap::new();
    if targets.iter().any(|t| !t.filter_templates.is_empty())
        && jobs.iter().any(|j| j.template_id.is_some())
    {
        for t in store.list_templates().await? {
            templates.insert(t.id, t.name);
        }
    }
    if !targets.is_empty() {
        for s in store.list_servers().await? {
            servers.insert(s.id.clone(), (s.name.clone(), s.tags.clone()));
        }
        let wants_batches = targets
            .iter()
            .any(|t| t.events.iter().any(|e| e == "batch.finished"));
        if wants_batches {
            for j in &jobs {
                if let Some(b) = &j.batch_id {
                    if !batches.contains_key(b) {
                        batches.insert(b.clone(), store.batch_outcome(b).await?);
                    }
                }
            }
        }
    }
    let events_of = |j: &Job| -> Vec<NotifyEvent> {
        let (name, tags) = servers
            .get(&j.server_id)
            .map(|(n, t)| (Some(n.as_str()), t.clone()))
            .unwrap_or((None, Vec::new()));
        let template = j
            .template_id
            .as_ref()
            .and_then(|t| templates.get(t))
            .map(String::as_str);
        let mut evs = Vec::new();
        if let Some(e) = job_event(j.status) {
            evs.push(payload::job_event(e, j, name, &tags, template));
        }
        if j.error_code.as_deref() == Some(remora_domain::ErrorCode::HostKeyMismatch.as_str()) {
            evs.push(payload::job_event(
                "host_key.mismatch",
                j,
                name,
                &tags,
                template,
            ));
        }
        if let Some(Some((all_completed, n))) = j.batch_id.as_ref().and_then(|b| batches.get(b)) {
            evs.push(payload::batch_event(
                j.batch_id.as_deref().unwrap_or_default(),
                *all_completed,
                *n,
                j.finished_at.unwrap_or(j.created_at),
                &tags,
            ));
        }
        evs
    };
    let window = cfg.retry_window.as_millis() as i64;
    let claimed = store
        .dispatch_jobs(&jobs, &targets, window, events_of)
        .await?;
    Ok(claimed.len())
}

/// Dispatch until `shutdown`, waking the sender when deliveries may exist.
pub async fn run(store: Store, cfg: NotifyConfig, wake: Arc<Notify>, shutdown: CancellationToken) {
    loop {
        let n = match dispatch_once(&store, &cfg).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "dispatching notifications failed");
                0
            }
        };
        if n > 0 {
            wake.notify_one();
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(cfg.poll) => {}
        }
    }
}
