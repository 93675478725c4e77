//! The sender task: claims due deliveries in the database (so several API instances never send one twice), sends them, records each attempt and schedules the retry.

use crate::{backoff, send, NotifyConfig};
use remora_store::notifications::AttemptOutcome;
use remora_store::{ClaimedDelivery, Store, Vault};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A claim is held this long beyond the request timeout; a sender that died
/// mid-send loses it then and another instance retries.
const LEASE_SLACK_MS: i64 = 30_000;

/// Send one claimed delivery and record the outcome.
pub async fn deliver(
    store: &Store,
    vault: &Vault,
    http: &reqwest::Client,
    cfg: &NotifyConfig,
    claimer: &str,
    d: ClaimedDelivery,
) {
    let secret = match d.secret_enc.as_deref().map(|s| vault.open(s)) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            let o = AttemptOutcome {
                status_code: None,
                latency_ms: 0,
                error: Some(format!("the target's secret cannot be opened: {e}")),
                delivered: false,
                retry_at: None,
            };
            let _ = store.record_attempt(&d.id, claimer, d.attempt, &o).await;
            return;
        }
        None => None,
    };
    let sent = send::attempt(http, cfg, &d, secret.as_deref()).await;
    let retry_at = if sent.ok {
        None
    } else {
        backoff::next_attempt(
            remora_domain::time::now_ms(),
            d.attempt,
            d.give_up_at,
            cfg.base_delay,
            cfg.max_delay,
            rand::random::<f64>(),
        )
    };
    if !sent.ok {
        tracing::info!(delivery = %d.id, target = %d.target.name, attempt = d.attempt, error = ?sent.error, retry = retry_at.is_some(), "notification attempt failed");
    }
    let o = AttemptOutcome {
        status_code: sent.status_code,
        latency_ms: sent.latency_ms,
        error: sent.error,
        delivered: sent.ok,
        retry_at,
    };
    if let Err(e) = store.record_attempt(&d.id, claimer, d.attempt, &o).await {
        tracing::warn!(error = %e, delivery = %d.id, "recording a notification attempt failed");
    }
}

/// One round: claim up to `cfg.concurrency` due deliveries and send them
/// concurrently. Returns how many were sent.
pub async fn send_due(
    store: &Store,
    vault: &Vault,
    http: &reqwest::Client,
    cfg: &NotifyConfig,
    claimer: &str,
) -> remora_store::Result<usize> {
    let lease = cfg.timeout.as_millis() as i64 + LEASE_SLACK_MS;
    let claimed = store
        .claim_deliveries(claimer, lease, cfg.concurrency as i64)
        .await?;
    let n = claimed.len();
    futures::future::join_all(
        claimed
            .into_iter()
            .map(|d| deliver(store, vault, http, cfg, claimer, d)),
    )
    .await;
    Ok(n)
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("building the HTTP client")
}

/// Send due deliveries until `shutdown`: right after the dispatcher created
/// some (`wake`), else every `cfg.poll`.
pub async fn run(
    store: Store,
    vault: Vault,
    cfg: NotifyConfig,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let claimer = format!("api-{}", uuid::Uuid::new_v4());
    let http = http_client();
    loop {
        let busy = match send_due(&store, &vault, &http, &cfg, &claimer).await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::warn!(error = %e, "claiming notification deliveries failed");
                false
            }
        };
        if busy {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(cfg.poll) => {}
        }
    }
}
