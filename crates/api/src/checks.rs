//! Server checks: `POST /test` (real SSH login and `true`) and `POST /status`
//! (login), one server or all of them concurrently under a limit and a
//! per-host timeout, so a hundred servers take about as long as the slowest;
//! `GET /status` only reads the last stored check.

use crate::AppState;
use remora_domain::{ErrorCode, Server};
use remora_ssh::{Connection, SshConfig, SshError};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckResult {
    pub server_id: String,
    pub name: String,
    pub ok: bool,
    /// reachable | unreachable | timeout | auth_failed | host_key_mismatch | error
    /// (`unchecked` from `GET` when no check ran yet)
    pub status: String,
    pub latency_ms: Option<u64>,
    pub host_key_fingerprint: Option<String>,
    /// pinned (matches), new (pinned now, first use), mismatch
    pub host_key_status: Option<String>,
    pub error: Option<String>,
    pub error_code: Option<String>,
    /// When the check ran (from `GET`: the last stored check; null when none ran).
    #[serde(with = "remora_domain::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub checked_at: Option<i64>,
}

/// The last stored check of `server`, without logging in.
pub fn stored(server: &Server) -> CheckResult {
    let status = server
        .last_status
        .clone()
        .unwrap_or_else(|| "unchecked".into());
    CheckResult {
        server_id: server.id.clone(),
        name: server.name.clone(),
        ok: status == "reachable",
        status,
        latency_ms: None,
        host_key_fingerprint: server.host_key_fingerprint.clone(),
        host_key_status: server
            .host_key_fingerprint
            .as_ref()
            .map(|_| "pinned".into()),
        error: None,
        error_code: None,
        checked_at: server.last_checked_at,
    }
}

fn status_of(e: &SshError) -> &'static str {
    match e {
        SshError::ConnectFailed { .. } => "unreachable",
        SshError::ConnectTimeout { .. } => "timeout",
        SshError::AuthFailed { .. } | SshError::BadKey(_) | SshError::BadCertificate(_) => {
            "auth_failed"
        }
        SshError::HostKeyMismatch { .. } => "host_key_mismatch",
        SshError::HostKeyUntrusted(_) => "host_key_untrusted",
        SshError::JumpFailed { .. } => "jump_failed",
        SshError::SessionRefused(_) | SshError::Ssh(_) => "error",
    }
}

pub async fn check(state: &AppState, server: &Server, run_true: bool) -> CheckResult {
    let started = Instant::now();
    let mut r = CheckResult {
        server_id: server.id.clone(),
        name: server.name.clone(),
        ok: false,
        status: "error".into(),
        latency_ms: None,
        host_key_fingerprint: None,
        host_key_status: None,
        error: None,
        error_code: None,
        checked_at: Some(remora_domain::time::now_ms()),
    };
    let secrets = match state.store.open_secrets(&server.id, &state.vault).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            r.error = Some("the server was deleted".into());
            return r;
        }
        Err(e) => {
            r.error = Some(e.to_string());
            r.error_code = Some(ErrorCode::SecretUnreadable.into());
            return r;
        }
    };
    let cfg = SshConfig {
        connect_timeout: state.cfg.check_timeout,
        max_jump_depth: state.cfg.max_jump_depth,
        key_limits: state.cfg.key_limits,
        ..Default::default()
    };
    let outcome = async {
        let target = remora_ssh::chain::target_with_jumps(
            &state.store,
            &state.vault,
            server,
            secrets,
            cfg.max_jump_depth,
        )
        .await?;
        let conn = Connection::connect(&target, &cfg).await?;
        if run_true {
            let out = conn.run("true", state.cfg.check_timeout).await?;
            if out.exit_code != Some(0) {
                conn.disconnect().await;
                return Err(SshError::Ssh(format!(
                    "`true` exited with {:?}",
                    out.exit_code
                )));
            }
        }
        let fp = conn.host_key_fingerprint().to_string();
        conn.disconnect().await;
        Ok::<String, SshError>(fp)
    }
    .await;
    r.latency_ms = Some(started.elapsed().as_millis() as u64);
    match outcome {
        Ok(fp) => {
            // Trust on first use: a successful check pins the key, unless
            // another request pinned a different one meanwhile.
            let pinned = match &server.host_key_fingerprint {
                Some(_) => Ok(Some("pinned")),
                None => match state.store.pin_host_key(&server.id, &fp).await {
                    Ok(Some(stored)) if stored == fp => Ok(Some("new")),
                    Ok(Some(stored)) => Err((
                        "host_key_mismatch",
                        ErrorCode::HostKeyMismatch,
                        format!("the host presented {fp}, but {stored} was pinned meanwhile"),
                    )),
                    Ok(None) => Err((
                        "error",
                        ErrorCode::ServerNotFound,
                        "the server was deleted".to_string(),
                    )),
                    Err(e) => Err(("error", ErrorCode::Internal, e.to_string())),
                },
            };
            match pinned {
                Ok(k) => {
                    r.ok = true;
                    r.status = "reachable".into();
                    r.host_key_status = k.map(str::to_string);
                }
                Err((status, code, msg)) => {
                    r.status = status.into();
                    if status == "host_key_mismatch" {
                        r.host_key_status = Some("mismatch".into());
                    }
                    r.error_code = Some(code.into());
                    r.error = Some(msg);
                }
            }
            r.host_key_fingerprint = Some(fp);
        }
        Err(e) => {
            if let SshError::HostKeyMismatch { got, .. } = &e {
                r.host_key_fingerprint = Some(got.clone());
                r.host_key_status = Some("mismatch".into());
            }
            r.status = status_of(&e).into();
            r.error_code = Some(e.code().into());
            r.error = Some(e.to_string());
        }
    }
    let _ = state.store.set_server_status(&server.id, &r.status).await;
    r
}

/// Check many servers concurrently (at most `check_concurrency` at once).
pub async fn check_all(state: &AppState, servers: Vec<Server>, run_true: bool) -> Vec<CheckResult> {
    let sem = Arc::new(tokio::sync::Semaphore::new(
        state.cfg.check_concurrency.max(1),
    ));
    let mut set = tokio::task::JoinSet::new();
    for (i, s) in servers.into_iter().enumerate() {
        let state = state.clone();
        let sem = sem.clone();
        set.spawn(async move {
            let _p = sem.acquire_owned().await;
            // Bound the whole check, not only the connect.
            let limit = state.cfg.check_timeout * 2 + Duration::from_secs(1);
            let r = match tokio::time::timeout(limit, check(&state, &s, run_true)).await {
                Ok(r) => r,
                Err(_) => CheckResult {
                    server_id: s.id.clone(),
                    name: s.name.clone(),
                    ok: false,
                    status: "timeout".into(),
                    latency_ms: Some(limit.as_millis() as u64),
                    host_key_fingerprint: None,
                    host_key_status: None,
                    error: Some(format!("no answer within {} s", limit.as_secs())),
                    error_code: Some(ErrorCode::ConnectTimeout.into()),
                    checked_at: Some(remora_domain::time::now_ms()),
                },
            };
            (i, r)
        });
    }
    let mut out: Vec<(usize, CheckResult)> = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(x) = r {
            out.push(x);
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}
