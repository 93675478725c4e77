//! The whole-body deadline: a request body not fully received `REMORA_BODY_TIMEOUT` after its
//! head is answered 408 `body_timeout` and its connection closed.
//!
//! The header read timeout (serve.rs) bounds the head only, and hyper has no body timeout; an
//! idle timeout per frame would not help either, since a client trickling one byte a second is
//! never idle. So the deadline is for the whole body, counted from when the head arrived.
//! Handlers that never read their body are not affected: the deadline fires only while a read
//! of the body waits.

use crate::error::ApiError;
use crate::AppState;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Default of `REMORA_BODY_TIMEOUT`, seconds.
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 30;

/// The body's error once its deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within {0:?} (REMORA_BODY_TIMEOUT)")]
pub struct BodyTimedOut(Duration);

/// A request body that fails with [`BodyTimedOut`] once `sleep` fires before its end, and
/// records that in `fired`.
struct Deadline {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
    fired: Arc<AtomicBool>,
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(r) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(r.map(|f| f.map_err(Into::into)));
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.fired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(BodyTimedOut(this.limit).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: wraps the body in its deadline; a handler whose body read ran out of time is
/// answered 408 `body_timeout` (whatever its extractor made of the failed read) with
/// `Connection: close`, as the rest of the body will never be read.
pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.cfg.body_timeout;
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let fired = Arc::new(AtomicBool::new(false));
    let req = req.map(|inner| {
        Body::new(Deadline {
            inner,
            sleep: Box::pin(tokio::time::sleep(limit)),
            limit,
            fired: fired.clone(),
        })
    });
    let resp = next.run(req).await;
    if !fired.load(Ordering::Relaxed) {
        return resp;
    }
    tracing::info!(?limit, "request body timed out");
    let mut resp = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        BodyTimedOut(limit).to_string(),
    )
    .into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}
