//! Running one claimed job over SSH: connect (pinning the host key on first
//! use), start the wrapped command, stream output, and stop the remote
//! process tree on cancel or timeout. See `remora_domain::command` for what
//! runs on the host.

use crate::sink::Sink;
use crate::Ctx;
use remora_domain::command::{command_line, exec_string, kill_marked, script_line};
use remora_domain::{Job, JobKind, JobStatus, OutputEvent, Stream, TOPIC_OUTPUT_PREFIX};
use remora_netqueue::Delivery;
use remora_ssh::{sig_name, Sig, SshError, Target};
use remora_store::Finish;
use russh::ChannelMsg;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub enum Outcome {
    /// Final status recorded (or the job was not ours any more): ack.
    Done,
    /// Requeued after a connection failure: nack with this delay.
    Retry(Duration),
}

struct Running<'a> {
    ctx: &'a Ctx,
    job: &'a Job,
}

impl Running<'_> {
    async fn fail(&self, error: &str, code: &str) -> Outcome {
        let f = Finish {
            status: Some(JobStatus::Failed),
            error: Some(error.to_string()),
            error_code: Some(code.to_string()),
            ..Default::default()
        };
        self.finish(f).await
    }

    async fn finish(&self, f: Finish) -> Outcome {
        match self
            .ctx
            .store
            .finish_job(&self.job.id, &self.ctx.cfg.id, &f)
            .await
        {
            Ok(Some(st)) => {
                info!(status = %st, exit_code = ?f.exit_code, "job finished");
                self.ctx
                    .metrics
                    .jobs_finished
                    .with_label_values(&[st.as_str()])
                    .inc();
                self.ctx.publish_status(&self.job.id, st, f.exit_code).await;
            }
            Ok(None) => warn!("job was no longer running on this worker; its final status stands"),
            Err(e) => warn!(error = %e, "recording the final status failed"),
        }
        Outcome::Done
    }
}

async fn target_for(ctx: &Ctx, job: &Job) -> Result<(Target, String), (String, &'static str)> {
    let server = match ctx.store.get_server(&job.server_id).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(("the job's server was deleted".into(), "server_not_found")),
        Err(e) => return Err((format!("reading the server failed: {e}"), "internal")),
    };
    let secrets = match ctx.store.open_secrets(&job.server_id, &ctx.vault).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(("the job's server was deleted".into(), "server_not_found")),
        Err(e) => return Err((e.to_string(), "secret_unreadable")),
    };
    Ok((remora_ssh::target_of(&server, secrets), server.id))
}

pub async fn run_job(ctx: &Ctx, job: Job, d: &Delivery) -> Outcome {
    let r = Running { ctx, job: &job };
    ctx.publish_status(&job.id, JobStatus::Running, None).await;
    let cancel = CancellationToken::new();
    if let Ok(mut m) = ctx.running.lock() {
        m.insert(job.id.clone(), cancel.clone());
    }
    ctx.metrics.jobs_running.inc();
    // A cancel may have landed between the claim and the registration above.
    if ctx
        .store
        .is_cancel_requested(&job.id)
        .await
        .unwrap_or(false)
    {
        cancel.cancel();
    }
    let out = run_inner(&r, d, cancel).await;
    if let Ok(mut m) = ctx.running.lock() {
        m.remove(&job.id);
    }
    ctx.metrics.jobs_running.dec();
    out
}

async fn run_inner(r: &Running<'_>, d: &Delivery, cancel: CancellationToken) -> Outcome {
    let (ctx, job) = (r.ctx, r.job);
    let (target, server_id) = match target_for(ctx, job).await {
        Ok(t) => t,
        Err((msg, code)) => return r.fail(&msg, code).await,
    };
    let line = match job.kind {
        JobKind::Command => command_line(job.command.as_deref().unwrap_or(""), &job.args),
        JobKind::Script => script_line(job.shell.as_deref().unwrap_or("/bin/bash"), &job.args),
    };
    // A pooled connection can be dead without the client knowing yet (sshd
    // restarted, its session killed): when a channel cannot be opened on a
    // reused connection, drop that connection and try a fresh one. Only a
    // failure on a new connection counts against the job.
    let mut tries = 0;
    let (lease, mut channel) = loop {
        tries += 1;
        let lease = tokio::select! {
            l = ctx.pool.lease(&server_id, &target) => l,
            _ = cancel.cancelled() => {
                if ctx.drain_expired.load(Ordering::Relaxed) {
                    // Never started: another worker can run it.
                    if let Ok(true) = ctx.store.requeue_job(&job.id, &ctx.cfg.id, "the worker shut down before the command started").await {
                        ctx.publish_status(&job.id, JobStatus::Queued, None).await;
                        return Outcome::Retry(Duration::ZERO);
                    }
                }
                return r.finish(Finish { status: Some(JobStatus::Canceled), error: Some("canceled before the command started".into()), ..Default::default() }).await;
            }
        };
        let lease = match lease {
            Ok(l) => l,
            Err(e) => {
                ctx.metrics
                    .connect_failures
                    .with_label_values(&[e.code()])
                    .inc();
                if e.is_connect_level() && job.attempt <= job.max_retries {
                    let delay = crate::retry_delay(ctx.cfg.retry_backoff, job.attempt);
                    let msg = format!(
                        "attempt {} failed: {e}; retrying in {} ms",
                        job.attempt,
                        delay.as_millis()
                    );
                    if let Ok(true) = ctx.store.requeue_job(&job.id, &ctx.cfg.id, &msg).await {
                        info!(error = %e, "connection failed; job requeued");
                        ctx.publish_status(&job.id, JobStatus::Queued, None).await;
                        return Outcome::Retry(delay);
                    }
                }
                return r.fail(&e.to_string(), e.code()).await;
            }
        };
        if let Some(t) = lease.connected_in {
            ctx.metrics.connect_seconds.observe(t.as_secs_f64());
        }
        if target.pinned.is_none() {
            // Trust on first use.
            if let Ok(Some(pinned)) = ctx
                .store
                .pin_host_key(&server_id, lease.host_key_fingerprint())
                .await
            {
                if pinned != lease.host_key_fingerprint() {
                    let e = SshError::HostKeyMismatch {
                        expected: pinned,
                        got: lease.host_key_fingerprint().to_string(),
                    };
                    return r.fail(&e.to_string(), e.code()).await;
                }
            }
        }
        // sshd refuses a session (AdministrativelyProhibited, "no more
        // sessions" in its log) when it is at MaxSessions. The pool hands a
        // slot back only after sshd freed its session (pool::settle), so this
        // is for a host whose MaxSessions is below 10 or sessions opened by
        // someone else on the connection: keep the slot and ask again shortly.
        let mut opened = lease.exec(&exec_string(&job.id, &line)).await;
        for wait in [10u64, 20, 40, 80, 160] {
            match &opened {
                Err(e)
                    if !lease.is_closed()
                        && e.to_string().contains("AdministrativelyProhibited") =>
                {
                    info!(error = %e, "sshd is at MaxSessions on this connection; retrying on it");
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    opened = lease.exec(&exec_string(&job.id, &line)).await;
                }
                _ => break,
            }
        }
        match opened {
            Ok(c) => break (lease, c),
            Err(e) if lease.connected_in.is_none() && tries < 4 => {
                info!(error = %e, "a pooled connection is unusable; dropping it and reconnecting");
                ctx.pool.evict(&lease).await;
            }
            Err(e) => {
                return r
                    .fail(&format!("could not start the command: {e}"), e.code())
                    .await
            }
        }
    };
    if job.kind == JobKind::Script {
        let script = job.script.clone().unwrap_or_default();
        if let Err(e) = channel.data_bytes(script.into_bytes()).await {
            warn!(error = %e, "sending the script failed");
        }
    }
    let _ = channel.eof().await;

    let mut sink = Sink::new(
        &job.id,
        ctx.store.clone(),
        ctx.cfg.output_cap,
        ctx.cfg.flush_lines,
        ctx.cfg.flush_interval,
    );
    let topic = format!("{TOPIC_OUTPUT_PREFIX}{}", job.id);
    let deadline = (job.timeout > 0)
        .then(|| tokio::time::Instant::now() + Duration::from_secs(job.timeout as u64));
    let mut exit_code: Option<i64> = None;
    let mut exit_signal: Option<String> = None;
    // Why we are stopping the job, once we are.
    let mut stopping: Option<JobStatus> = None;
    let mut kill_at: Option<tokio::time::Instant> = None;
    let mut touch = tokio::time::interval(ctx.cfg.lease / 3);
    touch.tick().await;
    let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);

    loop {
        let flush_at = sink
            .deadline()
            .map(tokio::time::Instant::from_std)
            .unwrap_or(far);
        tokio::select! {
            msg = channel.wait() => {
                let Some(msg) = msg else { break };
                let (stream, data) = match msg {
                    ChannelMsg::Data { data } => (Stream::Stdout, data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => (Stream::Stderr, data),
                    ChannelMsg::ExitStatus { exit_status } => { exit_code = Some(exit_status as i64); continue }
                    ChannelMsg::ExitSignal { signal_name, .. } => { exit_signal = Some(sig_name(&signal_name)); continue }
                    _ => continue,
                };
                ctx.metrics.output_bytes.with_label_values(&[stream_label(stream)]).inc_by(data.len() as u64);
                let offset = sink.stored(stream);
                let (kept, due) = sink.push(stream, &data);
                if kept.len() < data.len() {
                    ctx.metrics.output_dropped_bytes.inc_by((data.len() - kept.len()) as u64);
                }
                if !kept.is_empty() {
                    let ev = OutputEvent { job_id: job.id.clone(), stream, offset, len: kept.len() as i64, data: String::from_utf8_lossy(kept).into_owned() };
                    if let Ok(b) = serde_json::to_vec(&ev) {
                        let _ = ctx.queue.publish(&topic, b.into()).await;
                    }
                }
                if due {
                    if let Err(e) = sink.flush().await { warn!(error = %e, "storing output failed"); }
                }
            }
            _ = tokio::time::sleep_until(flush_at), if sink.deadline().is_some() => {
                if let Err(e) = sink.flush().await { warn!(error = %e, "storing output failed"); }
            }
            _ = cancel.cancelled(), if stopping.is_none() => {
                stopping = Some(JobStatus::Canceled);
                kill_at = Some(tokio::time::Instant::now() + ctx.cfg.kill_grace);
                terminate(&lease, &mut channel, &job.id, Sig::TERM).await;
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() && stopping.is_none() => {
                stopping = Some(JobStatus::TimedOut);
                kill_at = Some(tokio::time::Instant::now() + ctx.cfg.kill_grace);
                terminate(&lease, &mut channel, &job.id, Sig::TERM).await;
            }
            _ = tokio::time::sleep_until(kill_at.unwrap_or(far)), if kill_at.is_some() => {
                kill_at = None;
                terminate(&lease, &mut channel, &job.id, Sig::KILL).await;
            }
            _ = touch.tick() => {
                let _ = ctx.queue.touch(&d.queue, &d.id, d.lease_id, ctx.cfg.lease).await;
            }
        }
    }
    if stopping.is_some() {
        // Whatever escaped TERM (setsid, trapped signals) goes now.
        let sweep = kill_marked(&job.id, "KILL");
        if let Err(e) = lease.run_aside(&sweep, Duration::from_secs(5)).await {
            warn!(error = %e, "final process sweep failed");
        }
    }
    if let Err(e) = sink.flush().await {
        warn!(error = %e, "storing output failed");
    }
    let (status, error) = match stopping {
        Some(JobStatus::TimedOut) => (JobStatus::TimedOut, Some(format!("timed out after {} s; the remote process tree was killed", job.timeout))),
        Some(_) if ctx.drain_expired.load(Ordering::Relaxed) => (
            JobStatus::Canceled,
            Some(format!(
                "canceled: worker {} shut down and its drain timeout of {} s ran out; the remote process tree was killed",
                ctx.cfg.id,
                ctx.cfg.drain_timeout.as_secs()
            )),
        ),
        Some(_) => (JobStatus::Canceled, Some("canceled; the remote process tree was killed".to_string())),
        None => match (exit_code, &exit_signal) {
            (Some(0), _) => (JobStatus::Completed, None),
            (Some(c), _) => (JobStatus::Failed, Some(format!("exited with code {c}"))),
            (None, Some(s)) => (JobStatus::Failed, Some(format!("killed by signal {s}"))),
            (None, None) => (JobStatus::Failed, Some("the SSH channel closed without an exit status".to_string())),
        },
    };
    let code = match status {
        JobStatus::Failed if exit_code.is_some() => Some("exit_nonzero".to_string()),
        JobStatus::Failed if exit_signal.is_some() => Some("signaled".to_string()),
        JobStatus::Failed => Some("no_exit_status".to_string()),
        JobStatus::TimedOut => Some("timed_out".to_string()),
        JobStatus::Canceled if ctx.drain_expired.load(Ordering::Relaxed) => {
            Some("drain_timeout".to_string())
        }
        JobStatus::Canceled => Some("canceled".to_string()),
        _ => None,
    };
    r.finish(Finish {
        status: Some(status),
        exit_code,
        exit_signal,
        error,
        error_code: code,
    })
    .await
}

fn stream_label(s: Stream) -> &'static str {
    match s {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    }
}

/// Signal the job over its channel and, on a second channel, every process
/// that carries the job's marker (children, setsid'd ones included).
async fn terminate(
    lease: &remora_ssh::pool::Lease,
    channel: &mut russh::Channel<russh::client::Msg>,
    job_id: &str,
    sig: Sig,
) {
    let name = sig_name(&sig);
    let started = Instant::now();
    let _ = channel.signal(sig).await;
    if let Err(e) = lease
        .run_aside(&kill_marked(job_id, &name), Duration::from_secs(5))
        .await
    {
        warn!(error = %e, signal = %name, "process sweep failed");
    }
    info!(signal = %name, took_ms = started.elapsed().as_millis() as u64, "sent signal to the job's process tree");
}
