//! The accept loop: a semaphore caps concurrent connections (further ones wait in the kernel's
//! backlog), a failed accept is retried with backoff, and each connection gets its own task.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::connection;
use super::shared::Shared;
use crate::backoff::Backoff;

pub(super) struct Listener<'a> {
    listener: &'a TcpListener,
    shared: &'a Arc<Shared>,
    tracker: &'a TaskTracker,
    shutdown: &'a CancellationToken,
    permits: Arc<Semaphore>,
}

impl<'a> Listener<'a> {
    pub(super) fn new(
        listener: &'a TcpListener,
        shared: &'a Arc<Shared>,
        tracker: &'a TaskTracker,
        shutdown: &'a CancellationToken,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(shared.config.max_connections.max(1)));
        Self {
            listener,
            shared,
            tracker,
            shutdown,
            permits,
        }
    }

    /// Accepts until `shutdown` is cancelled. Accept errors never end it.
    pub(super) async fn run(self) {
        let mut next_conn = 0u64;
        // 1 ms after the first failure, doubling up to 1 s; back to 1 ms after a success.
        let mut backoff = Backoff::new(Duration::from_millis(1), Duration::from_secs(1));
        loop {
            let permit = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                p = self.permits.clone().acquire_owned() => p.expect("semaphore is never closed"),
            };
            let accepted = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                a = self.listener.accept() => a,
            };
            let (socket, peer) = match accepted {
                Ok(a) => {
                    backoff.reset();
                    a
                }
                Err(e) => {
                    // Usually EMFILE or a connection reset before accept: back off and keep serving.
                    warn!(error = %e, "accept failed");
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            next_conn += 1;
            let shared = self.shared.clone();
            let shutdown = self.shutdown.clone();
            let conn = next_conn;
            self.tracker.spawn(async move {
                shared.connections.fetch_add(1, Ordering::Relaxed);
                shared.connections_total.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = connection::handle(&shared, socket, conn, peer, shutdown).await {
                    debug!(conn, error = %e, "connection ended with error");
                }
                shared.connections.fetch_sub(1, Ordering::Relaxed);
                drop(permit);
            });
        }
    }
}
