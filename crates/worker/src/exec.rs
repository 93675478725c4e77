//! Running one claimed job over SSH, in three phases: open a channel
//! ([`open_channel`]: connect with retries, pin the host key on first use,
//! wait out sshd's MaxSessions), run it ([`run_channel`]: stream output and
//! stop the remote process tree on cancel or timeout, TERM then KILL), and
//! the final status ([`final_status`], pure). See `remora_domain::command`
//! for what runs on the host.

use crate::sink::Sink;
use crate::Ctx;
use remora_domain::command::{
    become_failure, count_marked, kill_marked, program_parts, stdin_of, watches_stdin, Become,
    Sweep, EXEC,
};
use remora_domain::mask::Masker;
use remora_domain::template::ParamValue;
use remora_domain::{ErrorCode, Job, JobStatus, OutputEvent, Stream};
use remora_netqueue::Delivery;
use remora_ssh::pool::Lease;
use remora_ssh::{sig_name, Sig, SshError, Target};
use remora_store::{Finish, PendingOutput};
use russh::client::Msg;
use russh::{Channel, ChannelMsg};
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
    d: &'a Delivery,
    /// The connection generation the claim returned.
    generation: Option<i64>,
}

/// First and longest pause between tries of a write that ends a job (the
/// final status with the last output).
const STORE_RETRY_MIN: Duration = Duration::from_millis(200);
const STORE_RETRY_MAX: Duration = Duration::from_secs(5);

/// Retries of a write that ends a job, with backoff, keeping the job's
/// queue lease alive meanwhile (so the message stays unacked and no other
/// worker takes the job). Gives up only when the worker's drain timeout ran
/// out (it is exiting; the API's reaper then ends the job as `worker_lost`).
pub(crate) struct StoreRetry<'a> {
    ctx: &'a Ctx,
    d: &'a Delivery,
    what: &'static str,
    backoff: remora_netqueue::Backoff,
    touched: Instant,
    tries: u32,
}

impl<'a> StoreRetry<'a> {
    pub(crate) fn new(ctx: &'a Ctx, d: &'a Delivery, what: &'static str) -> StoreRetry<'a> {
        StoreRetry {
            ctx,
            d,
            what,
            backoff: remora_netqueue::Backoff::new(STORE_RETRY_MIN, STORE_RETRY_MAX),
            touched: Instant::now(),
            tries: 0,
        }
    }

    /// After a failed try: wait and return `true` to try again, or `false`
    /// to give up.
    pub(crate) async fn again(&mut self, e: &(dyn std::fmt::Display + Sync)) -> bool {
        let what = self.what;
        if self.ctx.drain_expired.load(Ordering::Relaxed) {
            warn!(error = %e, "{what} failed and the worker is exiting; giving up");
            return false;
        }
        self.tries += 1;
        self.ctx.metrics.store_retries.inc();
        let delay = self.backoff.next_delay();
        warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "{what} failed; retrying");
        if self.touched.elapsed() >= self.ctx.cfg.lease / 3 {
            let d = self.d;
            let _ = self
                .ctx
                .queue
                .touch(&d.queue, &d.id, d.lease_id, self.ctx.cfg.lease)
                .await;
            self.touched = Instant::now();
        }
        tokio::time::sleep(delay).await;
        true
    }

    pub(crate) fn stored(&self) {
        if self.tries > 0 {
            info!(tries = self.tries + 1, "{} stored after retries", self.what);
        }
    }
}

impl Running<'_> {
    async fn fail(&self, error: &str, code: ErrorCode) -> Outcome {
        let f = Finish {
            status: Some(JobStatus::Failed),
            error: Some(error.to_string()),
            error_code: Some(code.into()),
            ..Default::default()
        };
        self.finish(f).await
    }

    /// Record the final status, retrying while the database is unavailable:
    /// the caller acks the queue message only after this returns.
    async fn finish(&self, f: Finish) -> Outcome {
        self.finish_with_output(f, None).await
    }

    /// `finish` with the run's last output (what its sink still buffers and the byte
    /// counters), stored in the final status's transaction: one write instead of two.
    async fn finish_with_output(&self, f: Finish, output: Option<PendingOutput>) -> Outcome {
        let mut retry = StoreRetry::new(self.ctx, self.d, "recording the final status");
        let stored = loop {
            match self
                .ctx
                .store
                .finish_job_with_output(&self.job.id, &self.ctx.cfg.id, &f, output.clone())
                .await
            {
                Ok(v) => {
                    retry.stored();
                    break Ok(v);
                }
                Err(e) if retry.again(&e).await => continue,
                Err(e) => break Err(e),
            }
        };
        match stored {
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

/// A server's connection target as built at a connection generation (see [`TargetCache`]).
#[derive(Clone)]
struct CachedTarget {
    generation: i64,
    target: Target,
    sudo_password: Option<String>,
}

/// The connection targets the worker built, by server id, each with the connection generation
/// its job's claim returned (`Store::claim_job_gen`). A job whose claim returns the same
/// generation reuses it: nothing a connection is made from changed since, so the job reads no
/// server, secret or trusted CA and decrypts nothing. Any such change moves the generation on
/// and the next job of every server reads afresh. At most [`TARGET_CACHE_MAX`] servers (then it
/// starts afresh). It holds decrypted credentials in memory, as the worker's pooled
/// connections do.
#[derive(Default)]
pub struct TargetCache(std::sync::Mutex<std::collections::HashMap<String, CachedTarget>>);

/// Most servers [`TargetCache`] holds.
pub const TARGET_CACHE_MAX: usize = 20_000;

impl TargetCache {
    fn get(&self, server_id: &str, generation: i64) -> Option<CachedTarget> {
        let m = self.0.lock().ok()?;
        m.get(server_id)
            .filter(|c| c.generation == generation)
            .cloned()
    }

    fn put(&self, key: &str, c: CachedTarget) {
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= TARGET_CACHE_MAX && !m.contains_key(key) {
                m.clear();
            }
            m.insert(key.to_string(), c);
        }
    }
}

/// The job's target (through its jump chain), its server's id, and, for a `become` job, the
/// sudo password of the same decrypted credential: from the worker's [`TargetCache`] when
/// the claim's connection generation is the one it was built at, else read (one read of the
/// secrets) and cached at that generation.
async fn target_for(
    ctx: &Ctx,
    job: &Job,
    generation: Option<i64>,
) -> Result<(Target, String, Option<String>), (String, ErrorCode)> {
    if let Some(c) = generation.and_then(|g| ctx.targets.get(&job.server_id, g)) {
        ctx.metrics.target_cache_hits.inc();
        let sudo = c.sudo_password.filter(|_| job.options.sudo);
        return Ok((c.target, job.server_id.clone(), sudo));
    }
    let (target, server_id, sudo) = read_target(ctx, job).await?;
    if let Some(g) = generation {
        ctx.targets.put(
            &job.server_id,
            CachedTarget {
                generation: g,
                target: target.clone(),
                sudo_password: sudo.clone(),
            },
        );
    }
    Ok((target, server_id, sudo.filter(|_| job.options.sudo)))
}

/// [`target_for`] from the database; the sudo password whatever the job's options.
async fn read_target(
    ctx: &Ctx,
    job: &Job,
) -> Result<(Target, String, Option<String>), (String, ErrorCode)> {
    let deleted = || {
        (
            "the job's server was deleted".into(),
            ErrorCode::ServerNotFound,
        )
    };
    let server = match ctx.store.get_server(&job.server_id).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(deleted()),
        Err(e) => {
            return Err((
                format!("reading the server failed: {e}"),
                ErrorCode::Internal,
            ))
        }
    };
    let mut secrets = match ctx.store.open_secrets(&job.server_id, &ctx.vault).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(deleted()),
        Err(e) => return Err((e.to_string(), ErrorCode::SecretUnreadable)),
    };
    let sudo_password = secrets.sudo_password.take();
    let max = ctx.cfg.ssh.max_jump_depth;
    match remora_ssh::chain::target_with_jumps(&ctx.store, &ctx.vault, &server, secrets, max).await
    {
        Ok(t) => Ok((t, server.id, sudo_password)),
        Err(e) => Err((e.to_string(), e.code())),
    }
}

/// Run a claimed job. `registered`: its cancel token, in `ctx.running` since before the claim
/// (so no cancel after the claim can be missed); `None` registers it now and asks the database
/// about a cancel that landed in between. `generation`: the connection generation its claim
/// returned (see [`TargetCache`]).
pub async fn run_job(
    ctx: &Ctx,
    job: Job,
    d: &Delivery,
    registered: Option<CancellationToken>,
    generation: Option<i64>,
) -> Outcome {
    let r = Running {
        ctx,
        job: &job,
        d,
        generation,
    };
    ctx.publish_status(&job.id, JobStatus::Running, None).await;
    let cancel = match registered {
        Some(t) => t,
        None => {
            let t = CancellationToken::new();
            if let Ok(mut m) = ctx.running.lock() {
                m.insert(job.id.clone(), t.clone());
            }
            if ctx
                .store
                .is_cancel_requested(&job.id)
                .await
                .unwrap_or(false)
            {
                t.cancel();
            }
            t
        }
    };
    if job.cancel_requested {
        cancel.cancel();
    }
    ctx.metrics.jobs_running.inc();
    let out = run_inner(&r, d, cancel).await;
    if let Ok(mut m) = ctx.running.lock() {
        m.remove(&job.id);
    }
    ctx.metrics.jobs_running.dec();
    out
}

async fn run_inner(r: &Running<'_>, d: &Delivery, cancel: CancellationToken) -> Outcome {
    let (ctx, job) = (r.ctx, r.job);
    let (target, server_id, sudo_password) = match target_for(ctx, job, r.generation).await {
        Ok(t) => t,
        Err((msg, code)) => return r.fail(&msg, code).await,
    };
    let params = match template_params(ctx, job).await {
        Ok(p) => p,
        Err(msg) => return r.fail(&msg, ErrorCode::SecretUnreadable).await,
    };
    // The job's own env, then a template's fixed env and parameters (sudo resets the
    // environment, so a become job's program exports them on the far side of sudo).
    let env: Vec<(String, String)> = job
        .options
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(params.iter().map(|p| (p.env.clone(), p.value.clone())))
        .collect();
    let mut secrets: Vec<&str> = params
        .iter()
        .filter(|p| p.secret)
        .map(|p| p.value.as_str())
        .collect();
    // sudo never prints it; masked all the same, should anything echo it.
    secrets.extend(sudo_password.as_deref().filter(|p| p.len() >= 4));
    let pty = job.options.pty;
    let mut attempt = 0;
    let (ran, output) = loop {
        let (lease, channel) = match open_channel(r, &target, &server_id, EXEC, pty, &cancel).await
        {
            Ok(opened) => opened,
            Err(ended) => return ended,
        };
        let (ran, output) = run_channel(
            r,
            d,
            &cancel,
            &lease,
            channel,
            &env,
            sudo_password.as_deref(),
            &secrets,
        )
        .await;
        // A run that never started printed nothing: its sink holds no output to store.
        if !ran.never_started(pty) || attempt == NOT_STARTED_RETRIES || cancel.is_cancelled() {
            break (ran, output);
        }
        attempt += 1;
        info!(
            attempt,
            "the server closed the session before starting the command; opening another"
        );
    };
    let drain = ctx
        .drain_expired
        .load(Ordering::Relaxed)
        .then(|| (ctx.cfg.id.as_str(), ctx.cfg.drain_timeout));
    r.finish_with_output(final_status(&ran, job.timeout, drain), Some(output))
        .await
}

/// A template job's parameter values (sealed in the job row by the API), none otherwise.
async fn template_params(ctx: &Ctx, job: &Job) -> Result<Vec<ParamValue>, String> {
    // Only a template's job has sealed parameters (the claim returned its template_id).
    if job.template_id.is_none() {
        return Ok(Vec::new());
    }
    let origin = ctx
        .store
        .job_origin(&job.id)
        .await
        .map_err(|e| format!("reading the job's parameters: {e}"))?;
    let Some(sealed) = origin.and_then(|o| o.params_enc) else {
        return Ok(Vec::new());
    };
    let plain = ctx
        .vault
        .open(&sealed)
        .map_err(|e| format!("the job's parameters cannot be decrypted: {e}"))?;
    serde_json::from_slice(&plain).map_err(|e| format!("the job's parameters are corrupt: {e}"))
}

/// Phase 1: a lease on a connection to the job's server and the job's
/// command started on a channel of it — or the outcome when that cannot be
/// (canceled meanwhile, requeued for a retry, failed).
///
/// A pooled connection can be dead without the client knowing yet (sshd
/// restarted, its session killed): when a channel cannot be opened on a
/// reused connection, drop that connection and try a fresh one. Only a
/// failure on a new connection counts against the job.
async fn open_channel(
    r: &Running<'_>,
    target: &Target,
    server_id: &str,
    command: &str,
    pty: bool,
    cancel: &CancellationToken,
) -> Result<(Lease, Channel<Msg>), Outcome> {
    let ctx = r.ctx;
    let mut tries = 0;
    loop {
        tries += 1;
        let lease = tokio::select! {
            l = ctx.pool.lease(server_id, target) => l,
            _ = cancel.cancelled() => return Err(canceled_before_start(r).await),
        };
        let lease = match lease {
            Ok(l) => l,
            Err(e) => return Err(connect_failed(r, e).await),
        };
        if let Some(t) = lease.connected_in {
            ctx.metrics.connect_seconds.observe(t.as_secs_f64());
        }
        ctx.metrics
            .ssh_leases
            .with_label_values(&[if lease.connected_in.is_some() {
                "new"
            } else {
                "reused"
            }])
            .inc();
        if target.pinned.is_none() {
            if let Err(e) = pin_first_use(ctx, server_id, &lease).await {
                return Err(r.fail(&e.to_string(), e.code()).await);
            }
        }
        pin_hops_first_use(ctx, target, &lease).await;
        match exec_when_sshd_has_room(&lease, command, pty).await {
            Ok(c) => return Ok((lease, c)),
            Err(e) if lease.connected_in.is_none() && tries < 4 => {
                info!(error = %e, "a pooled connection is unusable; dropping it and reconnecting");
                ctx.pool.evict(&lease).await;
            }
            Err(e) => {
                return Err(r
                    .fail(&format!("could not start the command: {e}"), e.code())
                    .await)
            }
        }
    }
}

/// Canceled while connecting: the job never started. When the worker's
/// drain ran out another worker can run it; otherwise it ends canceled.
async fn canceled_before_start(r: &Running<'_>) -> Outcome {
    let (ctx, job) = (r.ctx, r.job);
    if ctx.drain_expired.load(Ordering::Relaxed) {
        if let Ok(true) = ctx
            .store
            .requeue_job(
                &job.id,
                &ctx.cfg.id,
                "the worker shut down before the command started",
            )
            .await
        {
            ctx.publish_status(&job.id, JobStatus::Queued, None).await;
            return Outcome::Retry(Duration::ZERO);
        }
    }
    r.finish(Finish {
        status: Some(JobStatus::Canceled),
        error: Some("canceled before the command started".into()),
        ..Default::default()
    })
    .await
}

/// No connection: requeue with backoff while retries last (connect-level
/// failures only), else fail.
async fn connect_failed(r: &Running<'_>, e: SshError) -> Outcome {
    let (ctx, job) = (r.ctx, r.job);
    if let SshError::HostKeyMismatch { got, .. } = &e {
        // For the dashboard's review: the key presented next to the pinned one.
        let _ = ctx
            .store
            .set_host_key_presented(&job.server_id, Some(got))
            .await;
    }
    ctx.metrics
        .connect_failures
        .with_label_values(&[e.code().as_str()])
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
    r.fail(&e.to_string(), e.code()).await
}

/// Trust on first use: pin the key the server presented unless another
/// one was pinned meanwhile (then that is a mismatch).
async fn pin_first_use(ctx: &Ctx, server_id: &str, lease: &Lease) -> Result<(), SshError> {
    let got = lease.host_key_fingerprint();
    match ctx.store.pin_host_key(server_id, got).await {
        Ok(Some(pinned)) if pinned != got => Err(SshError::HostKeyMismatch {
            expected: pinned,
            got: got.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Trust on first use for the jump hosts on the way: each unpinned hop's
/// server gets the key its connection was made with.
async fn pin_hops_first_use(ctx: &Ctx, target: &Target, lease: &Lease) {
    let mut hop = lease.via().cloned();
    while let Some(h) = hop {
        if let Some(id) = h.server_id() {
            let unpinned = target
                .jumps
                .iter()
                .any(|j| j.server_id.as_deref() == Some(id) && j.pinned.is_none());
            if unpinned {
                let _ = ctx.store.pin_host_key(id, h.host_key_fingerprint()).await;
            }
        }
        hop = h.via().cloned();
    }
}

/// Start `command` on a new channel of `lease`. A server may refuse a
/// session as administratively prohibited ([`SshError::SessionRefused`])
/// while it is at its session limit: keep the slot and ask again shortly.
/// (OpenSSH at MaxSessions answers "connect failed" instead, an
/// [`SshError::Ssh`]: [`open_channel`] then drops a pooled connection. The
/// pool hands a slot back only after sshd freed its session, pool::settle,
/// so either is for a host whose MaxSessions is below 10 or sessions opened
/// by someone else on the connection.)
async fn exec_when_sshd_has_room(
    lease: &Lease,
    command: &str,
    pty: bool,
) -> Result<Channel<Msg>, SshError> {
    let exec = || async {
        if pty {
            lease.exec_pty(command).await
        } else {
            lease.exec(command).await
        }
    };
    let mut opened = exec().await;
    for wait in [10u64, 20, 40, 80, 160] {
        match &opened {
            Err(e @ SshError::SessionRefused(_)) if !lease.is_closed() => {
                info!(error = %e, "sshd is at MaxSessions on this connection; retrying on it");
                tokio::time::sleep(Duration::from_millis(wait)).await;
                opened = exec().await;
            }
            _ => break,
        }
    }
    opened
}

/// Why a job is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Canceled,
    TimedOut,
}

/// The stop state machine of a running job: at the first stop reason TERM
/// goes out and KILL is scheduled `grace` later; a second reason changes
/// nothing.
#[derive(Debug, Default)]
struct Stopping {
    reason: Option<StopReason>,
    kill_at: Option<tokio::time::Instant>,
}

impl Stopping {
    /// Start stopping for `reason` at `now`; true when this is the first
    /// reason (the caller sends TERM).
    fn begin(&mut self, reason: StopReason, now: tokio::time::Instant, grace: Duration) -> bool {
        if self.reason.is_some() {
            return false;
        }
        self.reason = Some(reason);
        self.kill_at = Some(now + grace);
        true
    }
    /// The KILL went out: nothing more is scheduled.
    fn killed(&mut self) {
        self.kill_at = None;
    }
}

/// How a channel's run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ran {
    pub exit_code: Option<i64>,
    pub exit_signal: Option<String>,
    pub stopped: Option<StopReason>,
    /// After a stop: what the final sweep found (None: not checked).
    pub sweep: Option<Sweep>,
    /// A become job whose sudo refused: what sudo said.
    pub become_failed: Option<String>,
    /// Success replies the server sent to the channel's requests (the pty, if asked, then exec).
    pub replies: u32,
    /// Any stdout or stderr arrived.
    pub output: bool,
}

impl Ran {
    /// The server closed the channel without confirming the exec request, with no output and no
    /// exit status, and nothing of ours stopped it: the command never started. (SSH servers reply
    /// to `exec` once the command is started. Dropbear 2022.83–2024.85 can close a fresh
    /// session channel before it handles the exec request, under load; fixed upstream in
    /// mkj/dropbear#326.) Only then is another channel safe: nothing can run twice.
    pub fn never_started(&self, pty: bool) -> bool {
        self.exit_code.is_none()
            && self.exit_signal.is_none()
            && self.stopped.is_none()
            && !self.output
            && self.replies < if pty { 2 } else { 1 }
    }
}

/// How often a channel the server closed before starting the command is opened again.
const NOT_STARTED_RETRIES: usize = 2;

/// How much of the start of each stream is kept to look for a failed become's marker line.
const HEAD_BYTES: usize = 4096;

/// Phase 2: feed the script, stream output into the sink and live
/// subscribers, keep the queue lease, and stop the job (TERM, KILL after
/// the grace) on cancel or timeout; after a stop, sweep what escaped. What the sink still holds
/// at the end is returned, to be stored with the final status.
async fn run_channel(
    r: &Running<'_>,
    d: &Delivery,
    cancel: &CancellationToken,
    lease: &Lease,
    mut channel: Channel<Msg>,
    env: &[(String, String)],
    sudo_password: Option<&str>,
    secrets: &[&str],
) -> (Ran, PendingOutput) {
    let (ctx, job) = (r.ctx, r.job);
    // Secret parameter values become `***` before output is stored or published.
    let mut masks = [Masker::new(secrets), Masker::new(secrets)];
    // The program line, then a script job's script, then EOF: streamed in
    // chunks within the channel's window (never one oversized packet, which
    // would break the connection other jobs share), beside the output loop
    // so a job that writes before it has read all its stdin cannot stall.
    let become_user = job.options.become_user();
    let sudo = job.options.sudo.then_some(Become {
        user: become_user,
        password: sudo_password.is_some(),
    });
    let (program, second) = program_parts(&job.id, &job.spec, env, sudo, job.options.pty);
    // A command job's watchdog reads the channel's stdin (its job reads /dev/null): the end of
    // stdin tells it the session is gone, so none is sent.
    let eof = !watches_stdin(&job.spec, job.options.sudo, job.options.pty);
    let mut input = program.into_bytes();
    if let (Some(pw), true) = (sudo_password, job.options.sudo) {
        // Read by the program's shell into a variable, then given to sudo on a pipe.
        input.extend_from_slice(pw.as_bytes());
        input.push(b'\n');
    }
    if let Some(second) = second {
        input.extend_from_slice(second.as_bytes());
    }
    if let Some(script) = stdin_of(&job.spec) {
        input.extend_from_slice(script.as_bytes());
    }
    let w = channel.make_writer();
    let feeder = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut w = Box::pin(w);
        for chunk in input.chunks(32 * 1024) {
            w.write_all(chunk).await?;
        }
        w.flush().await?;
        if eof {
            w.shutdown().await?;
        }
        Ok::<(), std::io::Error>(())
    });
    let feeder = tokio::spawn(async move {
        if let Ok(Err(e)) = feeder.await {
            warn!(error = %e, "sending the job's program failed");
        }
    });

    let mut sink = Sink::new(
        &job.id,
        ctx.store.clone(),
        ctx.cfg.output_cap,
        ctx.cfg.flush_lines,
        ctx.cfg.flush_interval,
    );
    let deadline = (job.timeout > 0)
        .then(|| tokio::time::Instant::now() + Duration::from_secs(job.timeout as u64));
    let mut ran = Ran::default();
    let mut head: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut stop = Stopping::default();
    let mut touch = tokio::time::interval(ctx.cfg.lease / 3);
    touch.tick().await;
    let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);

    loop {
        let flush_at = sink
            .deadline()
            .map(tokio::time::Instant::from_std)
            .unwrap_or(far);
        let reason = tokio::select! {
            msg = channel.wait() => {
                let Some(msg) = msg else { break };
                let (stream, data) = match msg {
                    ChannelMsg::Data { data } => (Stream::Stdout, data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => (Stream::Stderr, data),
                    ChannelMsg::ExitStatus { exit_status } => { ran.exit_code = Some(exit_status as i64); continue }
                    ChannelMsg::ExitSignal { signal_name, .. } => { ran.exit_signal = Some(sig_name(&signal_name)); continue }
                    ChannelMsg::Success => { ran.replies += 1; continue }
                    _ => continue,
                };
                ran.output = true;
                ctx.metrics.output_bytes.with_label_values(&[stream_label(stream)]).inc_by(data.len() as u64);
                let h = &mut head[usize::from(stream == Stream::Stderr)];
                if job.options.sudo && h.len() < HEAD_BYTES {
                    let take = data.len().min(HEAD_BYTES - h.len());
                    h.extend_from_slice(&data[..take]);
                }
                let data = masks[usize::from(stream == Stream::Stderr)].push(&data);
                let (a, due) = sink.push(stream, &data);
                if a.dropped > 0 {
                    ctx.metrics.output_dropped_bytes.inc_by(a.dropped as u64);
                }
                if !a.kept.is_empty() {
                    let m = OutputEvent::new(&job.id, stream, a.offset, a.kept).message();
                    let _ = ctx.queue.publish(&m.topic, m.payload.into()).await;
                }
                if due {
                    if let Err(e) = sink.flush().await { warn!(error = %e, "storing output failed"); }
                }
                continue;
            }
            _ = tokio::time::sleep_until(flush_at), if sink.deadline().is_some() => {
                if let Err(e) = sink.flush().await { warn!(error = %e, "storing output failed"); }
                continue;
            }
            _ = cancel.cancelled(), if stop.reason.is_none() => StopReason::Canceled,
            _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() && stop.reason.is_none() => StopReason::TimedOut,
            _ = tokio::time::sleep_until(stop.kill_at.unwrap_or(far)), if stop.kill_at.is_some() => {
                stop.killed();
                terminate(lease, &mut channel, &job.id, Sig::KILL).await;
                continue;
            }
            _ = touch.tick() => {
                let _ = ctx.queue.touch(&d.queue, &d.id, d.lease_id, ctx.cfg.lease).await;
                continue;
            }
        };
        if stop.begin(reason, tokio::time::Instant::now(), ctx.cfg.kill_grace) {
            terminate(lease, &mut channel, &job.id, Sig::TERM).await;
        }
    }
    feeder.abort();
    ran.stopped = stop.reason;
    if job.options.sudo && ran.exit_code == Some(1) {
        ran.become_failed = head.iter().find_map(|h| become_failure(&job.id, h));
    }
    if ran.stopped.is_some() {
        // Whatever escaped TERM (setsid, trapped signals) goes now.
        let sweep = format!(
            "{}; {}",
            kill_marked(&job.id, "KILL"),
            count_marked(&job.id)
        );
        match run_sh(lease, &sweep).await {
            Ok(o) => ran.sweep = Some(Sweep::parse(&String::from_utf8_lossy(&o.stdout))),
            Err(e) => warn!(error = %e, "final process sweep failed"),
        }
    }
    for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
        let tail = masks[i].finish();
        let (a, _) = sink.push(stream, &tail);
        if !a.kept.is_empty() {
            let m = OutputEvent::new(&job.id, stream, a.offset, a.kept).message();
            let _ = ctx.queue.publish(&m.topic, m.payload.into()).await;
        }
    }
    // What is still buffered goes with the final status, in its transaction.
    (ran, sink.into_pending())
}

/// Phase 3: the final status, message and error code of a run. `timeout`
/// is the job's (seconds); `drain` is the worker's id and drain timeout
/// when that timeout ran out (a cancel is then the drain's).
pub fn final_status(ran: &Ran, timeout: i64, drain: Option<(&str, Duration)>) -> Finish {
    let killed = ran
        .sweep
        .map(Sweep::describe)
        .unwrap_or_else(|| "the remote process tree was killed".to_string());
    let (status, error, code) = match (ran.stopped, drain) {
        (Some(StopReason::TimedOut), _) => (
            JobStatus::TimedOut,
            Some(format!(
                "timed out after {timeout} s; {killed}"
            )),
            Some(ErrorCode::TimedOut),
        ),
        (Some(StopReason::Canceled), Some((worker, drain_timeout))) => (
            JobStatus::Canceled,
            Some(format!(
                "canceled: worker {worker} shut down and its drain timeout of {} s ran out; {killed}",
                drain_timeout.as_secs()
            )),
            Some(ErrorCode::DrainTimeout),
        ),
        (Some(StopReason::Canceled), None) => (
            JobStatus::Canceled,
            Some(format!("canceled; {killed}")),
            Some(ErrorCode::Canceled),
        ),
        (None, _) if ran.become_failed.is_some() => (
            JobStatus::Failed,
            Some(format!(
                "become failed: sudo refused ({})",
                ran.become_failed.as_deref().unwrap_or_default()
            )),
            Some(ErrorCode::BecomeFailed),
        ),
        (None, _) => match (ran.exit_code, &ran.exit_signal) {
            (Some(0), _) => (JobStatus::Completed, None, None),
            (Some(c), _) => (
                JobStatus::Failed,
                Some(format!("exited with code {c}")),
                Some(ErrorCode::ExitNonzero),
            ),
            (None, Some(s)) => (
                JobStatus::Failed,
                Some(format!("killed by signal {s}")),
                Some(ErrorCode::Signaled),
            ),
            (None, None) => (
                JobStatus::Failed,
                Some("the SSH channel closed without an exit status".to_string()),
                Some(ErrorCode::NoExitStatus),
            ),
        },
    };
    Finish {
        status: Some(status),
        exit_code: ran.exit_code,
        exit_signal: ran.exit_signal.clone(),
        error,
        error_code: code.map(String::from),
    }
}

fn stream_label(s: Stream) -> &'static str {
    match s {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    }
}

/// Run a one-line POSIX sh snippet on a side channel, through [`EXEC`] like
/// a job (the login shell never parses it).
async fn run_sh(lease: &Lease, snippet: &str) -> Result<remora_ssh::Output, SshError> {
    debug_assert!(!snippet.contains('\n'));
    let line = format!("{snippet}\n");
    lease
        .run_aside_with_stdin(EXEC, line.as_bytes(), Duration::from_secs(5))
        .await
}

/// Signal the job over its channel and, on a second channel, every process
/// that carries the job's marker (children, setsid'd ones included).
async fn terminate(lease: &Lease, channel: &mut Channel<Msg>, job_id: &str, sig: Sig) {
    let name = sig_name(&sig);
    let started = Instant::now();
    let _ = channel.signal(sig).await;
    if let Err(e) = run_sh(lease, &kill_marked(job_id, &name)).await {
        warn!(error = %e, signal = %name, "process sweep failed");
    }
    info!(signal = %name, took_ms = started.elapsed().as_millis() as u64, "sent signal to the job's process tree");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(code: Option<i64>, sig: Option<&str>, stopped: Option<StopReason>) -> Ran {
        Ran {
            exit_code: code,
            exit_signal: sig.map(Into::into),
            stopped,
            sweep: None,
            become_failed: None,
            ..Default::default()
        }
    }

    #[test]
    fn only_an_unconfirmed_silent_channel_counts_as_never_started() {
        let closed = Ran::default();
        assert!(
            closed.never_started(false),
            "no reply, no output, no status"
        );
        assert!(closed.never_started(true));
        let confirmed = Ran {
            replies: 1,
            ..Default::default()
        };
        assert!(!confirmed.never_started(false), "exec confirmed: it ran");
        assert!(confirmed.never_started(true), "only the pty was confirmed");
        assert!(!Ran {
            replies: 2,
            ..Default::default()
        }
        .never_started(true));
        assert!(!Ran {
            output: true,
            ..Default::default()
        }
        .never_started(false));
        assert!(!ran(Some(0), None, None).never_started(false));
        assert!(!ran(None, Some("TERM"), None).never_started(false));
        assert!(!ran(None, None, Some(StopReason::Canceled)).never_started(false));
    }

    fn fin(f: &Finish) -> (JobStatus, Option<&str>, Option<&str>) {
        (
            f.status.unwrap(),
            f.error.as_deref(),
            f.error_code.as_deref(),
        )
    }

    #[test]
    fn an_exit_without_a_stop_is_the_commands_own() {
        let f = final_status(&ran(Some(0), None, None), 0, None);
        assert_eq!(fin(&f), (JobStatus::Completed, None, None));
        assert_eq!(f.exit_code, Some(0));
        let f = final_status(&ran(Some(3), None, None), 0, None);
        assert_eq!(
            fin(&f),
            (
                JobStatus::Failed,
                Some("exited with code 3"),
                Some("exit_nonzero")
            )
        );
        let f = final_status(&ran(None, Some("SEGV"), None), 0, None);
        assert_eq!(
            fin(&f),
            (
                JobStatus::Failed,
                Some("killed by signal SEGV"),
                Some("signaled")
            )
        );
        assert_eq!(f.exit_signal.as_deref(), Some("SEGV"));
        let f = final_status(&ran(None, None, None), 0, None);
        assert_eq!(
            fin(&f),
            (
                JobStatus::Failed,
                Some("the SSH channel closed without an exit status"),
                Some("no_exit_status")
            )
        );
    }

    #[test]
    fn a_stop_decides_over_the_exit() {
        let killed = ran(None, Some("TERM"), Some(StopReason::TimedOut));
        let f = final_status(&killed, 7, Some(("w1", Duration::from_secs(30))));
        assert_eq!(
            fin(&f),
            (
                JobStatus::TimedOut,
                Some("timed out after 7 s; the remote process tree was killed"),
                Some("timed_out")
            )
        );
        assert_eq!(f.exit_signal.as_deref(), Some("TERM"));
        let canceled = ran(Some(143), None, Some(StopReason::Canceled));
        let f = final_status(&canceled, 0, None);
        assert_eq!(
            fin(&f),
            (
                JobStatus::Canceled,
                Some("canceled; the remote process tree was killed"),
                Some("canceled")
            )
        );
        assert_eq!(f.exit_code, Some(143));
        let f = final_status(&canceled, 0, Some(("w1", Duration::from_secs(30))));
        assert_eq!(
            fin(&f),
            (
                JobStatus::Canceled,
                Some("canceled: worker w1 shut down and its drain timeout of 30 s ran out; the remote process tree was killed"),
                Some("drain_timeout")
            )
        );
    }

    #[test]
    fn the_first_stop_reason_sends_term_and_schedules_kill() {
        let now = tokio::time::Instant::now();
        let grace = Duration::from_secs(5);
        let mut s = Stopping::default();
        assert!(s.begin(StopReason::TimedOut, now, grace));
        assert_eq!(
            (s.reason, s.kill_at),
            (Some(StopReason::TimedOut), Some(now + grace))
        );
        // A cancel after the timeout changes neither the reason nor the KILL time.
        assert!(!s.begin(StopReason::Canceled, now + grace, grace));
        assert_eq!(
            (s.reason, s.kill_at),
            (Some(StopReason::TimedOut), Some(now + grace))
        );
        s.killed();
        assert_eq!((s.reason, s.kill_at), (Some(StopReason::TimedOut), None));
        assert!(
            !s.begin(StopReason::Canceled, now, grace),
            "no second TERM after KILL"
        );
    }
}
