//! SSE streams through `app(state)`: the open-stream caps per token and in
//! all (429 `too_many_streams` with `Retry-After`, freed when a stream's body drops), and a job
//! stream that wakes on its job's events rather than polling the database.

use crate::tests::state_with;
use crate::{app, ApiConfig, AppState};
use axum::body::{Body, BodyDataStream};
use axum::http::{header, Request, Response, StatusCode};
use futures::StreamExt;
use remora_domain::events::{JobEvent, OutputEvent};
use remora_domain::{Job, JobSpec, JobStatus, Stream};
use remora_netqueue::Event;
use std::time::Duration;
use tokio::time::{timeout, Instant};
use tower::ServiceExt;

const A: &str = "rmr_stream_test_token_a";
const B: &str = "rmr_stream_test_token_b";
const C: &str = "rmr_stream_test_token_c";

async fn state(cfg: ApiConfig) -> (AppState, tempfile::TempDir) {
    state_with(
        cfg,
        &[("a", A, "viewer"), ("b", B, "viewer"), ("c", C, "admin")],
    )
    .await
}

async fn get(state: &AppState, token: &str, path: &str) -> Response<Body> {
    let req = Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    app(state.clone()).oneshot(req).await.unwrap()
}

/// The `error` object of a refused request.
async fn error_of(resp: Response<Body>) -> serde_json::Value {
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["error"].clone()
}

async fn refused(state: &AppState, token: &str, path: &str, cap: &str) {
    let resp = get(state, token, path).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
    let retry = resp
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(
        retry.as_deref(),
        Some(crate::stream::STREAMS_RETRY_AFTER_SECS.to_string().as_str()),
        "{path}: Retry-After"
    );
    let e = error_of(resp).await;
    assert_eq!(e["code"], "too_many_streams", "{e}");
    assert!(e["message"].as_str().unwrap().contains(cap), "{e}");
}

/// Wait, with a deadline, until `cond` holds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::task::yield_now().await;
    }
}

/// Read SSE text until it contains `needle` (10 s deadline); returns what was read.
async fn read_until(body: &mut BodyDataStream, needle: &str) -> String {
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, body.next()).await {
            Ok(Some(Ok(b))) => seen.push_str(&String::from_utf8_lossy(&b)),
            Ok(other) => panic!("stream ended before {needle:?}: {other:?}; read {seen:?}"),
            Err(_) => panic!("no {needle:?} within 10 s; read {seen:?}"),
        }
    }
    seen
}

fn status_event(job: &str, status: JobStatus) -> Event {
    let m = JobEvent::new(job, status, None).message();
    Event {
        topic: m.topic,
        payload: m.payload.into(),
    }
}

#[tokio::test]
async fn open_streams_are_capped_per_token_and_in_all_and_freed_when_a_client_leaves() {
    let cfg = ApiConfig {
        sse_max_per_token: 2,
        sse_max_total: 3,
        ..Default::default()
    };
    let (state, _dir) = state(cfg).await;
    let a_id = state.store.find_token(&crate::auth::hash_token(A)).await;
    let a_id = a_id.unwrap().unwrap().0;
    let ev = "/api/v1/events";
    let a1 = get(&state, A, ev).await;
    let a2 = get(&state, A, ev).await;
    assert_eq!((a1.status(), a2.status()), (StatusCode::OK, StatusCode::OK));
    // The third of token a is refused while two are open; job streams count too
    // (refused before the job is looked up).
    refused(&state, A, ev, "REMORA_SSE_MAX_PER_TOKEN").await;
    refused(
        &state,
        A,
        "/api/v1/jobs/nope/stream",
        "REMORA_SSE_MAX_PER_TOKEN",
    )
    .await;
    assert_eq!(state.streams.of(&a_id), 2);
    // Another token still gets one, and that fills the server's cap.
    let b1 = get(&state, B, ev).await;
    assert_eq!(b1.status(), StatusCode::OK);
    refused(&state, C, ev, "REMORA_SSE_MAX_TOTAL").await;
    assert_eq!(state.streams.total(), 3);

    // Client a goes away from one stream: its slot is freed and a new one is accepted.
    drop(a1);
    until("a's closed stream to be released", || {
        state.streams.of(&a_id) == 1
    })
    .await;
    let a3 = get(&state, A, ev).await;
    assert_eq!(a3.status(), StatusCode::OK);
    refused(&state, A, ev, "REMORA_SSE_MAX_PER_TOKEN").await;

    // The streams that stay open still get their events.
    let mut body = b1.into_body().into_data_stream();
    state
        .live
        .dispatch(&status_event("j-open", JobStatus::Running));
    let seen = read_until(&mut body, "j-open").await;
    assert!(seen.contains("event: job"), "{seen}");

    // The server's cap is freed likewise.
    refused(&state, C, ev, "REMORA_SSE_MAX_TOTAL").await;
    drop(body);
    until("b's stream to be released", || state.streams.total() == 2).await;
    let c1 = get(&state, C, ev).await;
    assert_eq!(c1.status(), StatusCode::OK);
    drop((a2, a3, c1));
    until("every stream to be released", || state.streams.total() == 0).await;
}

/// With the fallback poll an hour away, a job stream still follows its job:
/// it wakes on the job's status and output events (and reads the database
/// then), and closes after the final status.
#[tokio::test]
async fn a_job_stream_follows_its_events_without_polling() {
    let cfg = ApiConfig {
        sse_fallback_poll: Duration::from_secs(3600),
        ..Default::default()
    };
    let (state, _dir) = state(cfg).await;
    let server = state
        .store
        .insert_server(&remora_store::NewServer {
            name: "s1".into(),
            hostname: "h".into(),
            port: 22,
            user: "u".into(),
            is_active: true,
            max_concurrency: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let spec = JobSpec::Command {
        command: "true".into(),
        args: vec![],
    };
    let job = Job::queued(spec, server.id.clone());
    state.store.insert_job(&job).await.unwrap();
    let resp = get(&state, C, &format!("/api/v1/jobs/{}/stream", job.id)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body().into_data_stream();
    read_until(&mut body, "\"queued\"").await;

    // Running: the worker's claim, then its event.
    let claimed = state.store.claim_job(&job.id, "w1").await.unwrap();
    assert!(matches!(claimed, remora_store::Claim::Claimed(_)));
    state
        .live
        .dispatch(&status_event(&job.id, JobStatus::Running));
    read_until(&mut body, "\"running\"").await;

    // A live output chunk.
    let out = OutputEvent::new(&job.id, Stream::Stdout, 0, b"hello\n").message();
    state.live.dispatch(&Event {
        topic: out.topic,
        payload: out.payload.into(),
    });
    read_until(&mut body, "hello").await;

    // The final status: stored, then published; the stream sends it and ends.
    let f = remora_store::Finish {
        status: Some(JobStatus::Completed),
        exit_code: Some(0),
        ..Default::default()
    };
    state.store.finish_job(&job.id, "w1", &f).await.unwrap();
    state
        .live
        .dispatch(&status_event(&job.id, JobStatus::Completed));
    read_until(&mut body, "\"completed\"").await;
    let end = timeout(Duration::from_secs(10), async {
        while let Some(chunk) = body.next().await {
            chunk.unwrap();
        }
    })
    .await;
    assert!(
        end.is_ok(),
        "the stream did not close after the final status"
    );
    until("the ended stream to be released", || {
        state.streams.total() == 0
    })
    .await;
}
