//! A webhook receiver the notification tests run on loopback: it verifies every request's
//! `X-Remora-Signature` with the target's secret and keeps what arrived.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use remora_notify::sign;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The signing secret the tests give their targets.
pub const SECRET: &str = "whsec_e2e-0123456789abcdef";

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The signature matched `SECRET` over `"<timestamp>.<body>"` and the timestamp is fresh.
    pub verified: bool,
    pub body: Value,
}

pub struct Receiver {
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

async fn hook(
    State(s): State<Arc<Mutex<Vec<Hit>>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (ts, sig) = (h(sign::TIMESTAMP_HEADER), h(sign::SIGNATURE_HEADER));
    let fresh = ts
        .parse::<i64>()
        .is_ok_and(|t| (remora_domain::time::now_ms() / 1000 - t).abs() < 300);
    s.lock().unwrap().push(Hit {
        verified: fresh && sign::verify(SECRET.as_bytes(), &ts, &body, &sig),
        body: serde_json::from_slice(&body).unwrap_or_default(),
    });
    StatusCode::NO_CONTENT
}

impl Receiver {
    pub async fn start() -> Receiver {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let app = axum::Router::new()
            .route("/hook", post(hook))
            .with_state(hits.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Receiver {
            url: format!("http://{addr}/hook"),
            hits,
        }
    }

    /// Every request so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Wait (up to `within`) for a request whose body satisfies `pred`.
    pub async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Hit {
        let deadline = Instant::now() + within;
        loop {
            if let Some(h) = self.hits().into_iter().find(|h| pred(&h.body)) {
                return h;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} webhook within {within:?}; got {:?}",
                self.hits()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Create a webhook target for `events` on the stack; returns its id.
pub async fn target(stack: &crate::stack::Stack, name: &str, url: &str, events: &[&str]) -> String {
    let (st, v) = stack
        .post(
            "/api/v1/notifications",
            serde_json::json!({ "name": name, "url": url, "secret": SECRET, "events": events }),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    assert!(
        !v.to_string().contains(SECRET),
        "a given secret is never returned: {v}"
    );
    v["id"].as_str().unwrap().to_string()
}
