//! Server checks: `/test` (real SSH login and `true`) and `/status`
//! (login), one server or all of them concurrently under a limit and a
//! per-host timeout, so a hundred servers take about as long as the slowest.

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
    pub status: String,
    pub latency_ms: Option<u64>,
    pub host_key_fingerprint: Option<String>,
    /// pinned (matches), new (pinned now, first use), mismatch
    pub host_key_status: Option<String>,
    pub error: Option<String>,
    pub error_code: Option<String>,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub checked_at: i64,
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
        checked_at: remora_domain::time::now_ms(),
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
            r.ok = true;
            r.status = "reachable".into();
            r.host_key_status = Some(
                if server.host_key_fingerprint.is_some() {
                    "pinned"
                } else {
                    "new"
                }
                .into(),
            );
            if server.host_key_fingerprint.is_none() {
                // Trust on first use: a successful check pins the key.
                let _ = state.store.pin_host_key(&server.id, &fp).await;
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
                    checked_at: remora_domain::time::now_ms(),
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
