//! What a notification says: the JSON payload of each event, its Slack-compatible body and its email subject and text.

use remora_domain::Job;
use remora_store::NotifyEvent;
use serde_json::{json, Value};

/// The event of a job's final status, with the server's name and tags and
/// the name of the template it ran (what a target's template filter matches).
pub fn job_event(
    event: &str,
    job: &Job,
    server_name: Option<&str>,
    tags: &[String],
    template: Option<&str>,
) -> NotifyEvent {
    NotifyEvent {
        event: event.to_string(),
        key: format!("{event}:{}", job.id),
        payload: json!({
            "event": event,
            "occurred_at": remora_domain::time::ms_to_rfc3339(job.finished_at.unwrap_or(job.created_at)),
            "job": job,
            "server": { "id": job.server_id, "name": server_name, "tags": tags },
        }),
        tags: tags.to_vec(),
        status: Some(job.status.as_str().to_string()),
        template: template.map(str::to_string),
    }
}

/// `batch.finished` for a batch whose jobs are all final.
pub fn batch_event(
    batch_id: &str,
    all_completed: bool,
    jobs: i64,
    finished_at: i64,
    tags: &[String],
) -> NotifyEvent {
    let status = if all_completed { "completed" } else { "failed" };
    NotifyEvent {
        event: "batch.finished".into(),
        key: format!("batch.finished:{batch_id}"),
        payload: json!({
            "event": "batch.finished",
            "occurred_at": remora_domain::time::ms_to_rfc3339(finished_at),
            "batch": { "id": batch_id, "jobs": jobs, "status": status },
        }),
        tags: tags.to_vec(),
        status: Some(status.into()),
        template: None,
    }
}

/// `worker.down` for a worker that stopped heartbeating.
pub fn worker_down_event(worker_id: &str, at_ms: i64) -> NotifyEvent {
    NotifyEvent {
        event: "worker.down".into(),
        key: format!("worker.down:{worker_id}:{at_ms}"),
        payload: json!({
            "event": "worker.down",
            "occurred_at": remora_domain::time::ms_to_rfc3339(at_ms),
            "worker": { "id": worker_id },
        }),
        tags: Vec::new(),
        status: None,
        template: None,
    }
}

/// `schedule.skipped`: a due time of a schedule whose overlap policy is `skip`
/// came while its previous run was still going. The key is the schedule and
/// due time, so a due time is reported once however many instances tick.
pub fn schedule_skipped_event(
    schedule_id: &str,
    schedule_name: &str,
    template: Option<&str>,
    due_at: i64,
    reason: &str,
) -> NotifyEvent {
    NotifyEvent {
        event: "schedule.skipped".into(),
        key: format!("schedule.skipped:{schedule_id}:{due_at}"),
        payload: json!({
            "event": "schedule.skipped",
            "occurred_at": remora_domain::time::ms_to_rfc3339(remora_domain::time::now_ms()),
            "schedule": {
                "id": schedule_id,
                "name": schedule_name,
                "template": template,
                "due_at": remora_domain::time::ms_to_rfc3339(due_at),
                "reason": reason,
            },
        }),
        tags: Vec::new(),
        status: None,
        template: template.map(str::to_string),
    }
}

/// One line saying what happened (Slack text, email subject).
pub fn summary(payload: &Value) -> String {
    let event = payload["event"].as_str().unwrap_or("event");
    let job = &payload["job"];
    if job.is_object() {
        let what = job["command"]
            .as_str()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "script".into());
        let what: String = what.chars().take(80).collect();
        let server = payload["server"]["name"].as_str().unwrap_or("?");
        let exit = job["exit_code"]
            .as_i64()
            .map(|c| format!(", exit {c}"))
            .unwrap_or_default();
        return format!(
            "[remora] {event}: `{what}` on {server}{exit} (job {})",
            job["id"].as_str().unwrap_or("?")
        );
    }
    if let Some(b) = payload["batch"].as_object() {
        return format!(
            "[remora] {event}: batch {} ({} jobs, {})",
            b.get("id").and_then(|v| v.as_str()).unwrap_or("?"),
            b.get("jobs").and_then(|v| v.as_i64()).unwrap_or(0),
            b.get("status").and_then(|v| v.as_str()).unwrap_or("?")
        );
    }
    if let Some(sc) = payload["schedule"].as_object() {
        return format!(
            "[remora] {event}: schedule {} ({})",
            sc.get("name").and_then(|v| v.as_str()).unwrap_or("?"),
            sc.get("reason").and_then(|v| v.as_str()).unwrap_or("?")
        );
    }
    if let Some(w) = payload["worker"]["id"].as_str() {
        return format!("[remora] {event}: worker {w}");
    }
    format!("[remora] {event}")
}

/// The body for a target of `format` (`json`: the payload; `slack`: `{"text": …}` plus the payload under `remora`).
pub fn body(format: &str, payload: &Value) -> Vec<u8> {
    let v = if format == "slack" {
        json!({ "text": summary(payload), "remora": payload })
    } else {
        payload.clone()
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Plain-text email body: the summary and the payload, pretty-printed.
pub fn email_text(payload: &Value) -> String {
    format!(
        "{}\n\n{}\n",
        summary(payload),
        serde_json::to_string_pretty(payload).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_body_has_text_and_payload() {
        let mut j = Job::queued(
            remora_domain::JobSpec::Command {
                command: "make deploy".into(),
                args: vec![],
            },
            "s1".into(),
        );
        j.status = remora_domain::JobStatus::Failed;
        j.exit_code = Some(2);
        j.finished_at = Some(1_700_000_000_000);
        let ev = job_event("job.failed", &j, Some("web-1"), &["prod".into()], None);
        assert_eq!(ev.key, format!("job.failed:{}", j.id));
        let v: Value = serde_json::from_slice(&body("slack", &ev.payload)).unwrap();
        assert_eq!(
            v["text"],
            format!(
                "[remora] job.failed: `make deploy` on web-1, exit 2 (job {})",
                j.id
            )
        );
        assert_eq!(v["remora"]["job"]["id"], j.id.as_str());
        let v: Value = serde_json::from_slice(&body("json", &ev.payload)).unwrap();
        assert_eq!(v["event"], "job.failed");
        assert_eq!(v["server"]["tags"][0], "prod");
        assert!(email_text(&ev.payload).starts_with("[remora] job.failed"));
    }
}
