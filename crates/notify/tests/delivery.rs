//! End to end on a real SQLite store: a finished job reaches a webhook receiver this test runs (signature verified, 500 first, retried), a Slack-format target, a manual redelivery, and an email at a real SMTP server (aiosmtpd).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use remora_domain::{Job, JobSpec, JobStatus};
use remora_notify::{sign, NotifyConfig};
use remora_store::{DeliveryState, NewServer, NewTarget, Store, TargetKind, Vault};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const SECRET: &[u8] = b"whsec-test-0123456789";

#[derive(Default)]
struct Received {
    /// (path, signature verified, body)
    requests: Vec<(String, bool, serde_json::Value)>,
    fail_first: bool,
}

type Shared = Arc<Mutex<Received>>;

async fn hook(
    State(s): State<Shared>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let ts = headers
        .get(sign::TIMESTAMP_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let sig = headers
        .get(sign::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let fresh = ts
        .parse::<i64>()
        .is_ok_and(|t| (remora_domain::time::now_ms() / 1000 - t).abs() < 300);
    let ok = fresh && sign::verify(SECRET, ts, &body, sig);
    let mut r = s.lock().unwrap();
    r.requests.push((
        uri.path().to_string(),
        ok,
        serde_json::from_slice(&body).unwrap_or_default(),
    ));
    if r.fail_first && r.requests.len() == 1 {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::NO_CONTENT
}

async fn receiver(fail_first: bool) -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(Received {
        fail_first,
        ..Default::default()
    }));
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .route("/slack", post(hook))
        .with_state(shared.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}"), shared)
}

async fn store() -> (Store, Vault, tempfile::TempDir) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::connect(&remora_store::default_url(d.path()))
        .await
        .unwrap();
    (s, Vault::new([7; 32]), d)
}

async fn finished_job(s: &Store, server_id: &str, status: JobStatus) -> Job {
    let j = Job::queued(
        JobSpec::Command {
            command: "make deploy".into(),
            args: vec![],
        },
        server_id.into(),
    );
    s.insert_job(&j).await.unwrap();
    assert!(s
        .force_finish(&j.id, status, "exit 2", "exit_nonzero")
        .await
        .unwrap());
    s.get_job(&j.id).await.unwrap().unwrap()
}

fn cfg() -> NotifyConfig {
    NotifyConfig {
        poll: Duration::from_millis(50),
        base_delay: Duration::from_millis(300),
        max_delay: Duration::from_secs(1),
        timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn target(name: &str, url: &str, format: &str, tags: &[&str], vault: &Vault) -> NewTarget {
    NewTarget {
        name: name.into(),
        kind: Some(TargetKind::Webhook),
        url: Some(url.into()),
        format: format.into(),
        secret_enc: Some(vault.seal(SECRET)),
        events: vec!["job.failed".into()],
        filter_tags: tags.iter().map(|s| s.to_string()).collect(),
        enabled: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn webhook_is_signed_retried_after_500_and_redelivered() {
    let (s, vault, _d) = store().await;
    let (base, got) = receiver(true).await;
    let srv = s
        .insert_server(&NewServer {
            name: "web-1".into(),
            hostname: "127.0.0.1".into(),
            port: 22,
            user: "u".into(),
            is_active: true,
            tags: vec!["prod".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let hook_t = s
        .insert_target(&target(
            "ops",
            &format!("{base}/hook"),
            "json",
            &["prod"],
            &vault,
        ))
        .await
        .unwrap();
    let slack_t = s
        .insert_target(&target(
            "chat",
            &format!("{base}/slack"),
            "slack",
            &[],
            &vault,
        ))
        .await
        .unwrap();
    let staging_t = s
        .insert_target(&target(
            "staging",
            &format!("{base}/hook"),
            "json",
            &["staging"],
            &vault,
        ))
        .await
        .unwrap();
    let job = finished_job(&s, &srv.id, JobStatus::Failed).await;
    // A completed job is not an event these targets want.
    finished_job(&s, &srv.id, JobStatus::Completed).await;

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    remora_notify::spawn(&tracker, s.clone(), vault.clone(), cfg(), shutdown.clone());

    let delivered = |t: String| {
        let s = s.clone();
        move || {
            let (s, t) = (s.clone(), t.clone());
            async move {
                s.list_deliveries(&t, 10)
                    .await
                    .unwrap()
                    .first()
                    .is_some_and(|d| d.state == DeliveryState::Delivered)
            }
        }
    };
    wait_until("the webhook delivery", delivered(hook_t.id.clone())).await;
    wait_until("the slack delivery", delivered(slack_t.id.clone())).await;

    let log = s.list_deliveries(&hook_t.id, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].event, "job.failed");
    let attempts: Vec<_> = log[0]
        .log
        .iter()
        .map(|a| (a.attempt, a.status_code))
        .collect();
    // The first request of the receiver answered 500 (whichever target sent it).
    let reqs = got.lock().unwrap().requests.clone();
    assert_eq!(
        reqs.len(),
        3,
        "500, then the retry, plus the other target: {reqs:?}"
    );
    assert!(
        reqs.iter().all(|r| r.1),
        "every request carries a valid signature"
    );
    let first_path = reqs[0].0.clone();
    let failed_target = if first_path == "/hook" {
        &log
    } else {
        &s.list_deliveries(&slack_t.id, 10).await.unwrap()
    };
    let fa: Vec<_> = failed_target[0]
        .log
        .iter()
        .map(|a| (a.attempt, a.status_code))
        .collect();
    assert_eq!(
        fa,
        [(1, Some(500)), (2, Some(204))],
        "retried after the 500"
    );
    assert!(
        failed_target[0].log[1].at - failed_target[0].log[0].at >= 200,
        "backoff between attempts"
    );
    assert!(attempts.last().unwrap().1 == Some(204));
    // Bodies: JSON payload and Slack text.
    let hook_body = &reqs.iter().find(|r| r.0 == "/hook").unwrap().2;
    assert_eq!(hook_body["event"], "job.failed");
    assert_eq!(hook_body["job"]["id"], job.id.as_str());
    assert_eq!(hook_body["server"]["name"], "web-1");
    let slack_body = &reqs.iter().find(|r| r.0 == "/slack").unwrap().2;
    assert!(slack_body["text"]
        .as_str()
        .unwrap()
        .contains("job.failed: `make deploy` on web-1"));
    assert!(
        s.list_deliveries(&staging_t.id, 10)
            .await
            .unwrap()
            .is_empty(),
        "tag filter"
    );

    // Manual redelivery sends it again.
    assert!(s
        .redeliver(&hook_t.id, &log[0].id, 3_600_000)
        .await
        .unwrap());
    let got2 = got.clone();
    wait_until("the redelivery", move || {
        let n = got2.lock().unwrap().requests.len();
        async move { n == 4 }
    })
    .await;
    wait_until("the redelivery's record", delivered(hook_t.id.clone())).await;
    assert_eq!(
        s.list_deliveries(&hook_t.id, 10).await.unwrap()[0]
            .log
            .len(),
        2 + (first_path == "/hook") as usize
    );
    shutdown.cancel();
    tracker.close();
    tracker.wait().await;
}

#[tokio::test]
async fn email_arrives_at_a_real_smtp_server() {
    let smtp = remora_testkit::require!(remora_testkit::smtp::SmtpServer::start());
    let (s, vault, _d) = store().await;
    let srv = s
        .insert_server(&NewServer {
            name: "db-1".into(),
            hostname: "127.0.0.1".into(),
            port: 22,
            user: "u".into(),
            is_active: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let t = s
        .insert_target(&NewTarget {
            name: "oncall".into(),
            kind: Some(TargetKind::Email),
            email_to: vec!["oncall@example.com".into()],
            format: "json".into(),
            events: vec!["job.timed_out".into()],
            enabled: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let job = finished_job(&s, &srv.id, JobStatus::TimedOut).await;
    let cfg = NotifyConfig {
        smtp_url: Some(format!("smtp://127.0.0.1:{}", smtp.port)),
        smtp_from: "remora@example.com".into(),
        ..cfg()
    };
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    remora_notify::spawn(&tracker, s.clone(), vault, cfg, shutdown.clone());
    // The pretty-printed payload carries the job id on a short line (no quoted-printable wrap).
    let needle = format!("\"id\": \"{}\"", job.id);
    let found = tokio::task::spawn_blocking(move || {
        let ok = smtp.wait_for(&needle, Duration::from_secs(30));
        (ok, smtp.received())
    })
    .await
    .unwrap();
    assert!(found.0, "the email arrived: {}", found.1);
    assert!(found.1.contains("To: oncall@example.com"), "{}", found.1);
    assert!(
        found
            .1
            .contains("Subject: [remora] job.timed_out: `make deploy` on db-1"),
        "{}",
        found.1
    );
    let s2 = s.clone();
    let tid = t.id.clone();
    wait_until("the email delivery's record", move || {
        let (s, t) = (s2.clone(), tid.clone());
        async move {
            s.list_deliveries(&t, 10)
                .await
                .unwrap()
                .first()
                .is_some_and(|d| {
                    d.state == DeliveryState::Delivered && d.log[0].status_code == Some(250)
                })
        }
    })
    .await;
    shutdown.cancel();
    tracker.close();
    tracker.wait().await;
}
