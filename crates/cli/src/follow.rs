//! `--follow`: stream a job's output live over SSE, stdout to stdout and
//! stderr to stderr (prefixed with the server's name when following
//! several), resuming after a dropped connection with `Last-Event-ID`.
//! Ctrl-C cancels the job(s); a second Ctrl-C detaches.

use crate::client::Api;
use anyhow::Result;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use remora_domain::{Job, JobStatus};
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Exit codes of `--follow` beyond the job's own exit code.
pub const EXIT_TIMED_OUT: i32 = 124;
pub const EXIT_CANCELED: i32 = 130;
pub const EXIT_FAILED_NO_CODE: i32 = 1;
pub const EXIT_DETACHED: i32 = 2;

/// Jobs followed at once when following several: the API caps the open streams
/// of one token (`REMORA_SSE_MAX_PER_TOKEN`, default 32); the rest wait their turn
/// and then replay their stored output from the start.
pub const MAX_FOLLOWED_AT_ONCE: usize = 16;

/// How long a stream refused with `too_many_streams` (other clients of the token
/// or of the server hold the slots) is retried, once a second.
const STREAM_SLOT_RETRIES: u32 = 300;

fn write_out(prefix: &Option<String>, data: &str, stderr: bool, at_line_start: &mut bool) {
    let mut s = String::new();
    match prefix {
        None => s.push_str(data),
        Some(p) => {
            for ch in data.chars() {
                if *at_line_start {
                    s.push_str(p);
                    *at_line_start = false;
                }
                s.push(ch);
                if ch == '\n' {
                    *at_line_start = true;
                }
            }
        }
    }
    if stderr {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(s.as_bytes());
        let _ = e.flush();
    } else {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(s.as_bytes());
        let _ = o.flush();
    }
}

/// Follow one job to its end and return its final state.
pub async fn follow_job(api: &Api, job_id: &str, prefix: Option<String>) -> Result<Job> {
    let mut last_id: Option<String> = None;
    let mut line_start = [true, true];
    let mut attempts = 0u32;
    let mut slot_waits = 0u32;
    loop {
        let mut rb = api
            .request(
                reqwest::Method::GET,
                &format!("/api/v1/jobs/{}/stream", crate::client::enc(job_id)),
            )
            .header("accept", "text/event-stream");
        if let Some(id) = &last_id {
            rb = rb.header("last-event-id", id);
        }
        let resp = match api.send(rb).await {
            Ok(r) => r,
            Err(e) if attempts < 30 && e.to_string().contains("cannot reach") => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(e)
                if slot_waits < STREAM_SLOT_RETRIES
                    && e.downcast_ref::<crate::client::ApiFailure>()
                        .is_some_and(|f| f.code == "too_many_streams") =>
            {
                slot_waits += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut events = resp.bytes_stream().eventsource();
        let mut final_job: Option<Job> = None;
        while let Some(ev) = events.next().await {
            let Ok(ev) = ev else { break };
            if !ev.id.is_empty() {
                last_id = Some(ev.id.clone());
            }
            match ev.event.as_str() {
                "output" => {
                    let v: Value = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
                    let data = v["data"].as_str().unwrap_or("");
                    let is_err = v["stream"] == "stderr";
                    write_out(&prefix, data, is_err, &mut line_start[is_err as usize]);
                }
                "status" => {
                    if let Ok(j) = serde_json::from_str::<Job>(&ev.data) {
                        if j.status.is_final() {
                            final_job = Some(j);
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(j) = final_job {
            return Ok(j);
        }
        // The stream dropped before the end: resume.
        attempts += 1;
        if attempts > 30 {
            anyhow::bail!("lost the live stream of job {job_id} too many times");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub fn exit_code_of(job: &Job) -> i32 {
    match job.status {
        JobStatus::Completed => 0,
        JobStatus::TimedOut => EXIT_TIMED_OUT,
        JobStatus::Canceled => EXIT_CANCELED,
        _ => match job.exit_code {
            Some(c) if c > 0 && c < 256 => c as i32,
            _ => EXIT_FAILED_NO_CODE,
        },
    }
}

/// Follow jobs `(id, label)`; returns the process exit code: the job's own
/// for one job; for several, 0 when all completed, else 1.
pub async fn follow_jobs(api: &Api, jobs: Vec<(String, String)>) -> Result<i32> {
    let several = jobs.len() > 1;
    let ids: Vec<String> = jobs.iter().map(|(id, _)| id.clone()).collect();
    let results = Arc::new(Mutex::new(Vec::new()));
    let at_once = Arc::new(tokio::sync::Semaphore::new(MAX_FOLLOWED_AT_ONCE));
    let mut set = tokio::task::JoinSet::new();
    for (id, label) in jobs {
        let api = api.clone();
        let results = results.clone();
        let at_once = at_once.clone();
        let prefix = several.then(|| format!("[{label}] "));
        set.spawn(async move {
            let _turn = at_once.acquire_owned().await;
            let r = follow_job(&api, &id, prefix).await;
            results.lock().await.push((id, r));
        });
    }
    let mut interrupts = 0;
    loop {
        tokio::select! {
            next = set.join_next() => {
                if next.is_none() { break; }
            }
            _ = tokio::signal::ctrl_c() => {
                interrupts += 1;
                if interrupts == 1 {
                    eprintln!("\nremora: canceling {} job(s)… (Ctrl-C again to detach)", ids.len());
                    for id in &ids {
                        let _ = api.post(&format!("/api/v1/jobs/{}/cancel", crate::client::enc(id)), &Value::Null).await;
                    }
                } else {
                    eprintln!("remora: detached; the job(s) go on: {}", ids.join(" "));
                    return Ok(EXIT_DETACHED);
                }
            }
        }
    }
    let results = std::mem::take(&mut *results.lock().await);
    let mut code = 0;
    for (id, r) in results {
        match r {
            Ok(job) => {
                let c = exit_code_of(&job);
                // The exit code speaks for itself; explain other endings.
                if job.status != JobStatus::Completed && job.exit_code.is_none() {
                    if let Some(err) = &job.error {
                        eprintln!("remora: job {id} {}: {err}", job.status);
                    }
                }
                if several {
                    if c != 0 {
                        code = 1;
                    }
                } else {
                    code = c;
                }
            }
            Err(e) => {
                eprintln!("remora: following job {id} failed: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}
