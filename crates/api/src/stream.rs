//! `GET /jobs/{id}/stream`: server-sent events with the job's status and
//! output. Live chunks come from the worker over the queue's pub/sub; the
//! database fills any gap (a lagging client, a resumed stream, events lost
//! in flight). Event ids are `<stdout offset>:<stderr offset>`, so a client
//! resumes with `Last-Event-ID` and receives each byte once. The stream
//! closes after the final status. A stream wakes on its job's events and
//! reads the job from the database only then and every
//! `REMORA_SSE_FALLBACK_POLL` (a lost event); each token, and the server in
//! all, holds a bounded number of open streams.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::live::{SlotsFull, StreamSlot, Subscription, Update};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Extension;
use remora_domain::{Job, JobStatus, OutputEvent, Stream};
use serde_json::json;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(job_stream))
        .routes(routes!(events))
}

/// The `Retry-After` of a 429 `too_many_streams`, seconds. A slot frees when some client closes
/// a stream, which no clock predicts: this only paces a client's retries (an EventSource
/// reconnects after 3 s by itself).
pub const STREAMS_RETRY_AFTER_SECS: u64 = 5;

/// One more open stream for the caller, or a 429 naming the cap reached (with `Retry-After`).
fn open_slot(state: &AppState, caller: Option<&Caller>) -> ApiResult<StreamSlot> {
    let token = caller.map(|c| c.token_id.as_str()).unwrap_or("");
    state.streams.acquire(token).map_err(|full| {
        let message = match full {
            SlotsFull::Token(n) => format!(
                "this token already has {n} open streams (REMORA_SSE_MAX_PER_TOKEN); close one first"
            ),
            SlotsFull::Total(n) => format!(
                "the server already has {n} open streams (REMORA_SSE_MAX_TOTAL); retry later"
            ),
        };
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_streams", message)
            .retry_after(STREAMS_RETRY_AFTER_SECS)
    })
}
/// SSE keep-alive comment interval.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

struct Cursor {
    /// Bytes of each stream already sent to the client.
    sent: [i64; 2],
    /// Bytes of each stream seen in the database so far, and the last seq.
    db_pos: [i64; 2],
    last_seq: i64,
}

fn idx(s: Stream) -> usize {
    match s {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

fn output_event(c: &Cursor, stream: Stream, data: &str) -> Event {
    Event::default()
        .event("output")
        .id(format!("{}:{}", c.sent[0], c.sent[1]))
        .data(json!({ "stream": stream, "data": data }).to_string())
}

fn status_event(j: &Job) -> Event {
    Event::default()
        .event("status")
        .data(serde_json::to_string(j).unwrap_or_default())
}

/// The state of one job's event stream: the events due to the client
/// (`pending`) and what is needed to compute the next ones.
struct JobStream {
    state: AppState,
    id: String,
    sub: Subscription,
    c: Cursor,
    last_status: JobStatus,
    /// The job may have ended: once the database says so, send the rest and close.
    check_final: bool,
    tick: tokio::time::Interval,
    pending: VecDeque<Event>,
    /// The stored output was read once (after the first status event).
    started: bool,
    done: bool,
    _guard: crate::metrics::SseGuard,
    _slot: StreamSlot,
}

enum Woke {
    Update(Result<Update, RecvError>),
    Tick,
}

impl JobStream {
    /// Queue whatever the database holds beyond what the client has.
    async fn catch_up(&mut self) {
        let Ok(chunks) = self
            .state
            .store
            .output_chunks(&self.id, self.c.last_seq)
            .await
        else {
            return;
        };
        let c = &mut self.c;
        for ch in chunks {
            let i = idx(ch.stream);
            let start = c.db_pos[i];
            let len = ch.data.len() as i64;
            c.db_pos[i] += len;
            c.last_seq = ch.seq;
            if start + len > c.sent[i] {
                let from = (c.sent[i] - start).max(0) as usize;
                c.sent[i] = start + len;
                let text = String::from_utf8_lossy(&ch.data[from..]).into_owned();
                self.pending.push_back(output_event(c, ch.stream, &text));
            }
        }
    }

    /// A live chunk: sent when it continues what the client has; a gap is
    /// filled from the database first.
    async fn output(&mut self, o: OutputEvent) {
        let i = idx(o.stream);
        if o.offset > self.c.sent[i] {
            self.catch_up().await;
        }
        if o.offset == self.c.sent[i] {
            self.c.sent[i] += o.len;
            self.pending
                .push_back(output_event(&self.c, o.stream, &o.data));
        }
    }

    /// Wait for the next happening and queue its events; sets `done` after
    /// the final status.
    async fn step(&mut self) {
        if !self.started {
            self.started = true;
            self.catch_up().await;
            return;
        }
        if self.check_final {
            // Final: the database now holds all output; send the rest.
            self.catch_up().await;
            if let Ok(Some(j)) = self.state.store.get_job(&self.id).await {
                if j.status.is_final() {
                    self.pending.push_back(status_event(&j));
                    self.done = true;
                    return;
                }
            }
            self.check_final = false;
        }
        let woke = tokio::select! {
            u = self.sub.recv() => Woke::Update(u),
            _ = self.tick.tick() => Woke::Tick,
        };
        match woke {
            Woke::Update(Ok(Update::Output(o))) => self.output(o).await,
            Woke::Update(Ok(Update::Status(s))) => {
                if s.status != self.last_status {
                    self.last_status = s.status;
                    if s.status.is_final() {
                        self.check_final = true;
                    } else if let Ok(Some(j)) = self.state.store.get_job(&self.id).await {
                        self.pending.push_back(status_event(&j));
                    }
                }
            }
            Woke::Update(Err(RecvError::Lagged(_))) => self.catch_up().await,
            Woke::Update(Err(RecvError::Closed)) => self.done = true,
            Woke::Tick => {
                // Fallback for missed events: the database's view.
                match self.state.store.get_job(&self.id).await {
                    Ok(Some(j)) if j.status.is_final() => self.check_final = true,
                    Ok(Some(j)) if j.status != self.last_status => {
                        self.last_status = j.status;
                        self.pending.push_back(status_event(&j));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Server-sent events: `status` (the job) and `output` (`{"stream","data"}`); resumable with
/// `Last-Event-ID`; closes after the final status. A token over its open-stream cap gets a 429
/// `too_many_streams`.
#[utoipa::path(get, path = "/jobs/{id}/stream", tag = "jobs", params(("id" = String, Path, description = "Job id")), responses((status = 200, content_type = "text/event-stream", body = String), (status = 404, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody), (status = 429, description = "Rate limited, or too many open streams (`too_many_streams`); both with Retry-After (seconds)", body = crate::openapi::ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying")))))]
pub async fn job_stream(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<axum::response::Response> {
    let slot = open_slot(&state, caller.as_deref())?;
    let job = crate::lookup::job(&state, &id).await?;
    let mut sent = [0i64, 0i64];
    if let Some(last) = headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        if let Some((a, b)) = last.split_once(':') {
            sent = [a.parse().unwrap_or(0), b.parse().unwrap_or(0)];
        }
    }
    // Subscribe before reading the database, so nothing falls in between.
    let sub = state.live.subscribe(&id);
    // The first tick is at once: it reads the job after subscribing (a change
    // between the lookup above and the subscription), then every fallback period.
    let mut tick = tokio::time::interval(state.cfg.sse_fallback_poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let js = JobStream {
        _guard: crate::metrics::SseGuard::new(state.metrics.clone()),
        _slot: slot,
        sub,
        c: Cursor {
            sent,
            db_pos: [0, 0],
            last_seq: -1,
        },
        last_status: job.status,
        check_final: job.status.is_final(),
        tick,
        pending: VecDeque::from([status_event(&job)]),
        started: false,
        done: false,
        id,
        state,
    };
    let events = futures::stream::unfold(js, |mut js| async move {
        loop {
            if let Some(e) = js.pending.pop_front() {
                return Some((Ok::<Event, Infallible>(e), js));
            }
            if js.done {
                return None;
            }
            js.step().await;
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

/// Server-sent events of every job status change: `event: job`, data `{"job_id","status","exit_code"}`.
/// A client that falls behind gets `event: lagged` with the number of events it missed.
/// Counts against the same open-stream caps as job streams (429 `too_many_streams`).
#[utoipa::path(get, path = "/events", tag = "jobs", responses((status = 200, content_type = "text/event-stream", body = String), (status = 401, body = crate::openapi::ErrorBody), (status = 429, description = "Rate limited, or too many open streams (`too_many_streams`); both with Retry-After (seconds)", body = crate::openapi::ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying")))))]
pub async fn events(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
) -> ApiResult<axum::response::Response> {
    use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
    use tokio_stream::StreamExt;
    let slot = open_slot(&state, caller.as_deref())?;
    let guard = crate::metrics::SseGuard::new(state.metrics.clone());
    let events =
        tokio_stream::wrappers::BroadcastStream::new(state.live.statuses()).map(move |r| {
            let _counted = (&guard, &slot);
            Ok::<Event, Infallible>(match r {
                Ok(payload) => Event::default()
                    .event("job")
                    .data(String::from_utf8_lossy(&payload)),
                // Tell the client to refetch: it missed `n` events.
                Err(BroadcastStreamRecvError::Lagged(n)) => {
                    Event::default().event("lagged").data(n.to_string())
                }
            })
        });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}
