//! Accepts the API's HTTP connections: a cap on open connections and a time limit on request headers.
//!
//! Over the cap (`REMORA_MAX_CONNECTIONS`) the API stops accepting: new connections wait
//! in the kernel's listen backlog until an open one closes, and are then served. A
//! connection that has not sent a complete request head within `REMORA_HEADER_READ_TIMEOUT`
//! (the first request, or the next one on an idle keep-alive connection) is closed, so
//! clients that trickle bytes before authenticating hold a slot for that long at most. A body
//! that trickles after its head is cut by `REMORA_BODY_TIMEOUT` (body_timeout.rs, a middleware).

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Default of `REMORA_HEADER_READ_TIMEOUT`, seconds.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Default of `REMORA_MAX_CONNECTIONS`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Serve `router` on `listener` until `shutdown`, holding one permit of `slots` per open
/// connection. On shutdown it stops accepting, lets every open connection finish its
/// in-flight request (hyper's graceful shutdown) and returns when all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    let conns = tokio_util::task::TaskTracker::new();
    loop {
        // Take a slot before accepting: over the cap, connections stay in the backlog.
        let permit = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    drop(permit);
                    if is_connection_error(&e) {
                        continue;
                    }
                    // EMFILE and the like: back off instead of spinning (as axum::serve does).
                    tracing::error!(error = %e, "accept failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        let service = TowerToHyperService::new(router.clone());
        let sd = shutdown.clone();
        conns.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut conn = Box::pin(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = sd.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.as_mut().await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            // The socket closes with `conn`; only then is the slot free again.
            drop(conn);
            drop(permit);
        });
    }
    drop(listener);
    conns.close();
    conns.wait().await;
}

/// Errors of one connection that `accept` reports; the listener itself is fine.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
