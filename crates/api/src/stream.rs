//! `GET /jobs/{id}/stream`: server-sent events with the job's status and
//! output. Live chunks come from the worker over the queue's pub/sub; the
//! database fills any gap (a lagging client, a resumed stream, events lost
//! in flight). Event ids are `<stdout offset>:<stderr offset>`, so a client
//! resumes with `Last-Event-ID` and receives each byte once. The stream
//! closes after the final status.

use crate::error::ApiResult;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use remora_domain::{events, JobEvent, OutputEvent, Stream};
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

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

/// Send whatever the database holds beyond what the client has.
async fn catch_up(state: &AppState, id: &str, c: &mut Cursor, tx: &mpsc::Sender<Event>) -> bool {
    let Ok(chunks) = state.store.output_chunks(id, c.last_seq).await else {
        return true;
    };
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
            if tx.send(output_event(c, ch.stream, &text)).await.is_err() {
                return false;
            }
        }
    }
    true
}

/// Server-sent events: `status` (the job) and `output` (`{"stream","data"}`); resumable with
/// `Last-Event-ID`; closes after the final status. Browsers may pass `?access_token=`.
#[utoipa::path(get, path = "/jobs/{id}/stream", tag = "jobs", params(("id" = String, Path, description = "Job id")), responses((status = 200, content_type = "text/event-stream", body = String), (status = 404, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
pub async fn job_stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<axum::response::Response> {
    let job = crate::jobs::load(&state, &id).await?;
    let mut sent = [0i64, 0i64];
    if let Some(last) = headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        if let Some((a, b)) = last.split_once(':') {
            sent = [a.parse().unwrap_or(0), b.parse().unwrap_or(0)];
        }
    }
    let mut rx = state.events.subscribe();
    let (tx, out) = mpsc::channel::<Event>(256);
    let topic = events::output_topic(&id);
    let guard = crate::metrics::SseGuard::new(state.metrics.clone());
    tokio::spawn(async move {
        let _guard = guard;
        let mut c = Cursor {
            sent,
            db_pos: [0, 0],
            last_seq: -1,
        };
        let status = |j: &remora_domain::Job| {
            Event::default()
                .event("status")
                .data(serde_json::to_string(j).unwrap_or_default())
        };
        if tx.send(status(&job)).await.is_err() {
            return;
        }
        let mut last_status = job.status;
        if !catch_up(&state, &id, &mut c, &tx).await {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut check_final = job.status.is_final();
        loop {
            if check_final {
                // Final: the database now holds all output; send the rest.
                if !catch_up(&state, &id, &mut c, &tx).await {
                    return;
                }
                if let Ok(Some(j)) = state.store.get_job(&id).await {
                    if j.status.is_final() {
                        let _ = tx.send(status(&j)).await;
                        return;
                    }
                }
                check_final = false;
            }
            tokio::select! {
                _ = tx.closed() => return,
                ev = rx.recv() => match ev {
                    Ok(ev) if ev.topic == topic => {
                        let Some(o) = OutputEvent::decode(&ev.payload) else { continue };
                        let i = idx(o.stream);
                        if o.offset == c.sent[i] {
                            c.sent[i] += o.len;
                            if tx.send(output_event(&c, o.stream, &o.data)).await.is_err() { return; }
                        } else if o.offset > c.sent[i] {
                            // A gap: fill it from the database first.
                            if !catch_up(&state, &id, &mut c, &tx).await { return; }
                            if o.offset == c.sent[i] {
                                c.sent[i] += o.len;
                                if tx.send(output_event(&c, o.stream, &o.data)).await.is_err() { return; }
                            }
                        }
                    }
                    Ok(ev) if ev.topic == events::TOPIC_STATUS => {
                        let Some(s) = JobEvent::decode(&ev.payload) else { continue };
                        if s.job_id == id && s.status != last_status {
                            last_status = s.status;
                            if s.status.is_final() {
                                check_final = true;
                            } else if let Ok(Some(j)) = state.store.get_job(&id).await {
                                if tx.send(status(&j)).await.is_err() { return; }
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if !catch_up(&state, &id, &mut c, &tx).await { return; }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    // Fallback for missed events: the database's view.
                    match state.store.get_job(&id).await {
                        Ok(Some(j)) if j.status.is_final() => check_final = true,
                        Ok(Some(j)) if j.status != last_status => {
                            last_status = j.status;
                            if tx.send(status(&j)).await.is_err() { return; }
                        }
                        _ => {}
                    }
                }
            }
        }
    });
    use axum::response::IntoResponse;
    use tokio_stream::StreamExt;
    let events = tokio_stream::wrappers::ReceiverStream::new(out).map(Ok::<Event, Infallible>);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// `GET /events`: status changes of all jobs, for live list pages.
/// `event: job`, data `{"job_id","status","exit_code"}`.
/// Server-sent events of every job status change: `event: job`, data `{"job_id","status","exit_code"}`.
#[utoipa::path(get, path = "/events", tag = "jobs", responses((status = 200, content_type = "text/event-stream", body = String), (status = 401, body = crate::openapi::ErrorBody)))]
pub async fn events(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut rx = state.events.subscribe();
    let (tx, out) = mpsc::channel::<Result<Event, Infallible>>(256);
    let guard = crate::metrics::SseGuard::new(state.metrics.clone());
    tokio::spawn(async move {
        let _guard = guard;
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                ev = rx.recv() => match ev {
                    Ok(ev) if ev.topic == events::TOPIC_STATUS => {
                        let data = String::from_utf8_lossy(&ev.payload).into_owned();
                        if tx.send(Ok(Event::default().event("job").data(data))).await.is_err() { return; }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        // Tell the client to refetch: it missed `n` events.
                        if tx.send(Ok(Event::default().event("lagged").data(n.to_string()))).await.is_err() { return; }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });
    Sse::new(tokio_stream::wrappers::ReceiverStream::new(out))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
