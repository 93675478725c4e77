//! Sending one attempt: a signed webhook POST (reqwest) or an email over SMTP (lettre), with its status code and latency.

use crate::{payload, sign, NotifyConfig};
use remora_store::{ClaimedDelivery, TargetKind};
use std::time::Instant;

/// How one attempt went.
#[derive(Debug, Clone)]
pub struct Sent {
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub ok: bool,
    pub error: Option<String>,
}

/// Send `d` once. `secret` is the target's opened secret (webhooks sign with it).
pub async fn attempt(
    http: &reqwest::Client,
    cfg: &NotifyConfig,
    d: &ClaimedDelivery,
    secret: Option<&[u8]>,
) -> Sent {
    let started = Instant::now();
    let payload: serde_json::Value = serde_json::from_str(&d.payload).unwrap_or_default();
    let (status_code, result) = match d.target.kind {
        TargetKind::Webhook => webhook(http, cfg, d, &payload, secret).await,
        TargetKind::Email => email(cfg, d, &payload).await,
    };
    Sent {
        status_code,
        latency_ms: started.elapsed().as_millis() as i64,
        ok: result.is_ok(),
        error: result.err(),
    }
}

async fn webhook(
    http: &reqwest::Client,
    cfg: &NotifyConfig,
    d: &ClaimedDelivery,
    payload: &serde_json::Value,
    secret: Option<&[u8]>,
) -> (Option<i64>, Result<(), String>) {
    let Some(url) = d.target.url.as_deref() else {
        return (None, Err("webhook target has no url".into()));
    };
    let body = payload::body(&d.target.format, payload);
    let ts = remora_domain::time::now_ms() / 1000;
    let mut req = http
        .post(url)
        .timeout(cfg.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            reqwest::header::USER_AGENT,
            format!("remora/{}", remora_domain::VERSION),
        )
        .header("X-Remora-Event", &d.event)
        .header("X-Remora-Delivery", &d.id)
        .header(sign::TIMESTAMP_HEADER, ts.to_string());
    if let Some(secret) = secret {
        req = req.header(sign::SIGNATURE_HEADER, sign::signature(secret, ts, &body));
    }
    match req.body(body).send().await {
        Ok(resp) => {
            let code = resp.status().as_u16() as i64;
            if resp.status().is_success() {
                (Some(code), Ok(()))
            } else {
                (Some(code), Err(format!("HTTP {code}")))
            }
        }
        Err(e) => {
            // Name the failure without the URL (it may carry a token).
            let e = e.without_url();
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            (None, Err(format!("{kind}: {e}")))
        }
    }
}

async fn email(
    cfg: &NotifyConfig,
    d: &ClaimedDelivery,
    payload: &serde_json::Value,
) -> (Option<i64>, Result<(), String>) {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let Some(url) = cfg.smtp_url.as_deref() else {
        return (None, Err("REMORA_SMTP_URL is not set".into()));
    };
    let from = match cfg.smtp_from.parse() {
        Ok(f) => f,
        Err(e) => return (None, Err(format!("REMORA_SMTP_FROM: {e}"))),
    };
    let mut msg = Message::builder()
        .from(from)
        .subject(payload::summary(payload))
        .header(lettre::message::header::ContentType::TEXT_PLAIN);
    for to in &d.target.email_to {
        match to.parse() {
            Ok(addr) => msg = msg.to(addr),
            Err(e) => return (None, Err(format!("recipient {to}: {e}"))),
        }
    }
    let msg = match msg.body(payload::email_text(payload)) {
        Ok(m) => m,
        Err(e) => return (None, Err(format!("building the email: {e}"))),
    };
    let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(url) {
        Ok(b) => b.timeout(Some(cfg.timeout)).build(),
        Err(_) => {
            return (
                None,
                Err("REMORA_SMTP_URL is not a valid smtp:// or smtps:// URL".into()),
            )
        }
    };
    match transport.send(msg).await {
        Ok(r) => (Some(r.code().to_string().parse().unwrap_or(250)), Ok(())),
        Err(e) => (
            e.status().and_then(|c| c.to_string().parse().ok()),
            Err(format!("smtp: {e}")),
        ),
    }
}

/// Whether `a` parses as an email address (what email targets accept).
pub fn valid_address(a: &str) -> bool {
    a.trim().parse::<lettre::Address>().is_ok()
}
