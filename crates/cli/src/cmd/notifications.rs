//! `remora notifications …`: list, create and remove webhook/email targets, read a target's delivery log, redeliver.

use crate::client::{enc, Api, Reply};
use crate::render::{ago, emit, opt, table, Human, Output, View};
use anyhow::{bail, Result};
use clap::Subcommand;
use serde::Deserialize;
use serde_json::json;

#[derive(Subcommand)]
pub enum NotificationsCmd {
    /// List notification targets (never their secrets).
    #[command(after_help = "Example:\n  remora notifications list")]
    List,
    /// Create a webhook (--url) or email (--email) target.
    #[command(
        after_help = "Examples:\n  remora notifications create ops --url https://hooks.example.com/remora --events job.failed,job.timed_out --tag prod\n  remora notifications create chat --url https://hooks.slack.com/services/T/B/X --format slack --events job.failed\n  remora notifications create oncall --email oncall@example.com --events job.failed,worker.down"
    )]
    Create {
        name: String,
        /// Webhook URL (http or https).
        #[arg(long, conflicts_with = "email")]
        url: Option<String>,
        /// Email recipient (repeat for several); needs REMORA_SMTP_URL on the API.
        #[arg(long)]
        email: Vec<String>,
        /// Comma-separated: job.completed, job.failed, job.timed_out, job.canceled, batch.finished, schedule.skipped, host_key.mismatch, worker.down.
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
        /// json (default) or slack.
        #[arg(long)]
        format: Option<String>,
        /// Signing secret (default: generated and printed once).
        #[arg(long, env = "REMORA_WEBHOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// Only events of servers with this tag (repeat for any of several).
        #[arg(long)]
        tag: Vec<String>,
        /// Only jobs ending in this status (repeat).
        #[arg(long)]
        status: Vec<String>,
        /// Only jobs of this template (repeat).
        #[arg(long)]
        template: Vec<String>,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// Delete a target (by name or id) and its delivery log.
    #[command(after_help = "Example:\n  remora notifications rm ops")]
    Rm { target: String },
    /// A target's deliveries, newest first, with every attempt.
    #[command(after_help = "Example:\n  remora notifications deliveries ops --limit 20")]
    Deliveries {
        target: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Send a delivery again now.
    #[command(after_help = "Example:\n  remora notifications redeliver ops 0199…")]
    Redeliver { target: String, delivery: String },
}

#[derive(Debug, Deserialize)]
pub struct TargetList {
    pub targets: Vec<TargetRow>,
}

#[derive(Debug, Deserialize)]
pub struct TargetRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub url: Option<String>,
    pub to: Vec<String>,
    pub format: String,
    pub events: Vec<String>,
    pub enabled: bool,
    #[serde(default)]
    pub secret: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryRow>,
}

#[derive(Debug, Deserialize)]
pub struct DeliveryRow {
    pub id: String,
    pub event: String,
    pub state: String,
    pub attempts: i64,
    #[serde(with = "remora_domain::time::rfc3339")]
    pub created_at: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub log: Vec<AttemptRow>,
}

#[derive(Debug, Deserialize)]
pub struct AttemptRow {
    pub latency_ms: i64,
}

/// A target's id from its name or id.
async fn resolve(api: &Api, name_or_id: &str) -> Result<String> {
    let list: Reply<TargetList> = api.get_as("/api/v1/notifications").await?;
    match list
        .body
        .targets
        .iter()
        .find(|t| t.name == name_or_id || t.id == name_or_id)
    {
        Some(t) => Ok(t.id.clone()),
        None => bail!("no notification target named `{name_or_id}` (remora notifications list)"),
    }
}

pub async fn run(api: &Api, out: Output, c: NotificationsCmd) -> Result<i32> {
    match c {
        NotificationsCmd::List => {
            let r: Reply<TargetList> = api.get_as("/api/v1/notifications").await?;
            emit(out, &r.raw, &r.body);
        }
        NotificationsCmd::Create {
            name,
            url,
            email,
            events,
            format,
            secret,
            tag,
            status,
            template,
            disabled,
        } => {
            let mut body = json!({
                "name": name,
                "events": events,
                "filter": { "tags": tag, "statuses": status, "templates": template },
                "enabled": !disabled,
            });
            if email.is_empty() {
                body["kind"] = json!("webhook");
                body["url"] = json!(url);
                if let Some(f) = format {
                    body["format"] = json!(f);
                }
                if let Some(s) = secret {
                    body["secret"] = json!(s);
                }
            } else {
                body["kind"] = json!("email");
                body["to"] = json!(email);
            }
            let r: Reply<TargetRow> = api.post_as("/api/v1/notifications", &body).await?;
            emit(out, &r.raw, &r.body);
        }
        NotificationsCmd::Rm { target } => {
            let id = resolve(api, &target).await?;
            api.delete(&format!("/api/v1/notifications/{}", enc(&id)))
                .await?;
            emit(
                out,
                &json!({ "deleted": id }),
                &Human::line(format!("notification target {target} deleted")),
            );
        }
        NotificationsCmd::Deliveries { target, limit } => {
            let id = resolve(api, &target).await?;
            let r: Reply<DeliveryList> = api
                .get_as(&format!(
                    "/api/v1/notifications/{}/deliveries?limit={limit}",
                    enc(&id)
                ))
                .await?;
            emit(out, &r.raw, &r.body);
        }
        NotificationsCmd::Redeliver { target, delivery } => {
            let id = resolve(api, &target).await?;
            api.post(
                &format!(
                    "/api/v1/notifications/{}/deliveries/{}/redeliver",
                    enc(&id),
                    enc(&delivery)
                ),
                &json!({}),
            )
            .await?;
            emit(
                out,
                &json!({ "redelivering": delivery }),
                &Human::line(format!("delivery {delivery} queued for sending")),
            );
        }
    }
    Ok(0)
}

impl View for TargetList {
    fn human(&self) -> Human {
        let mut t = table(&["ID", "NAME", "KIND", "TO", "FORMAT", "EVENTS", "ENABLED"]);
        for x in &self.targets {
            let to = x.url.clone().unwrap_or_else(|| x.to.join(", "));
            t.add_row(vec![
                x.id.clone(),
                x.name.clone(),
                x.kind.clone(),
                to,
                x.format.clone(),
                x.events.join(","),
                x.enabled.to_string(),
            ]);
        }
        Human::table(t)
    }
}

/// The id on stdout; a generated secret is printed once, on stdout too.
impl View for TargetRow {
    fn human(&self) -> Human {
        match &self.secret {
            Some(s) => Human::line(s).note(format!(
                "notification target `{}` ({}) created; the signing secret above is shown only once",
                self.name, self.id
            )),
            None => Human::line(&self.id)
                .note(format!("notification target `{}` created", self.name)),
        }
    }
}

impl View for DeliveryList {
    fn human(&self) -> Human {
        let mut t = table(&[
            "ID",
            "EVENT",
            "STATE",
            "ATTEMPTS",
            "LAST CODE",
            "LAST LATENCY",
            "CREATED",
            "LAST ERROR",
        ]);
        for d in &self.deliveries {
            t.add_row(vec![
                d.id.clone(),
                d.event.clone(),
                d.state.clone(),
                d.attempts.to_string(),
                opt(&d.last_status_code),
                d.log
                    .last()
                    .map(|a| format!("{} ms", a.latency_ms))
                    .unwrap_or_default(),
                ago(d.created_at),
                opt(&d.last_error),
            ]);
        }
        Human::table(t)
    }
}
