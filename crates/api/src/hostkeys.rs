//! Host-key review: read the keys hosts present now (`scan`) and pin a reviewed list of them in
//! one call (`accept`), each pin audited.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::AppState;
use axum::extract::State;
use axum::{Extension, Json};
use remora_domain::Server;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(scan))
        .routes(routes!(accept))
}

/// Most servers one scan or accept may name.
pub const MAX_REVIEW: usize = 1000;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    /// Server ids or names (at most 1000); empty or absent: every server that is unpinned or has
    /// a pending mismatch.
    #[serde(default)]
    pub servers: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ScannedKey {
    pub server_id: String,
    pub name: String,
    /// The pinned fingerprint, if any.
    pub pinned: Option<String>,
    #[serde(with = "remora_domain::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_seen_at: Option<i64>,
    /// What the host presents now (null when it could not be read: see `error`).
    pub presented: Option<String>,
    /// The presented key's algorithm (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`); with
    /// `status` `match` it is the pinned key's type too (the API stores only fingerprints).
    pub key_type: Option<String>,
    /// `match`, `mismatch`, `unpinned` or `error`.
    pub status: String,
    pub error: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ScanResult {
    pub keys: Vec<ScannedKey>,
}

async fn servers_named(state: &AppState, names: &[String]) -> ApiResult<Vec<Server>> {
    if names.len() > MAX_REVIEW {
        return Err(ApiError::invalid(
            "servers",
            format!("at most {MAX_REVIEW} servers per call"),
        ));
    }
    let mut out = vec![];
    for n in names {
        out.push(crate::lookup::server(state, n).await?);
    }
    Ok(out)
}

/// Read the host key every named server presents now (no login, nothing written; operator, as
/// it connects out). Without names: the unpinned servers and those with a pending mismatch.
#[utoipa::path(post, operation_id = "scan_host_keys", path = "/servers/host-keys/scan", tag = "servers", request_body = ScanRequest, responses((status = 200, body = ScanResult), (status = 404, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn scan(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<ScanRequest>,
) -> ApiResult<Json<ScanResult>> {
    let servers = if req.servers.is_empty() {
        state
            .store
            .list_servers()
            .await?
            .into_iter()
            .filter(|s| s.host_key_fingerprint.is_none() || s.host_key_presented.is_some())
            .take(MAX_REVIEW)
            .collect()
    } else {
        servers_named(&state, &req.servers).await?
    };
    let sem = Arc::new(tokio::sync::Semaphore::new(
        state.cfg.check_concurrency.max(1),
    ));
    let mut set = tokio::task::JoinSet::new();
    for (i, s) in servers.into_iter().enumerate() {
        let (sem, timeout) = (sem.clone(), state.cfg.check_timeout);
        set.spawn(async move {
            let _p = sem.acquire_owned().await;
            let got = remora_ssh::probe_host_key_typed(&s.hostname, s.port as u16, timeout).await;
            let (presented, key_type, error) = match got {
                Ok((fp, kt)) => (Some(fp), Some(kt).filter(|k| !k.is_empty()), None),
                Err(e) => (None, None, Some(e.to_string())),
            };
            let status = match (&s.host_key_fingerprint, &presented) {
                (_, None) => "error",
                (None, Some(_)) => "unpinned",
                (Some(p), Some(g)) if p == g => "match",
                _ => "mismatch",
            };
            (
                i,
                ScannedKey {
                    server_id: s.id,
                    name: s.name,
                    pinned: s.host_key_fingerprint,
                    first_seen_at: s.host_key_first_seen_at,
                    presented,
                    key_type,
                    status: status.into(),
                    error,
                },
            )
        });
    }
    let mut keys: Vec<(usize, ScannedKey)> = set.join_all().await;
    keys.sort_by_key(|(i, _)| *i);
    Ok(Json(ScanResult {
        keys: keys.into_iter().map(|(_, k)| k).collect(),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptItem {
    /// Server id or name.
    pub server: String,
    /// The reviewed fingerprint to pin (`SHA256:…`).
    pub fingerprint: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkAccept {
    /// At most 1000.
    pub keys: Vec<AcceptItem>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BulkAcceptResult {
    pub accepted: usize,
    pub servers: Vec<Server>,
}

fn valid_fingerprint(fp: &str) -> bool {
    fp.strip_prefix("SHA256:").is_some_and(|b| {
        b.len() == 43
            && b.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
    })
}

/// Pin the reviewed fingerprints of many servers in one call (operator; each pin audited as
/// `server.host_key.accept`). All names and fingerprints are checked first: one bad item
/// changes nothing, and the pins are written in one transaction. The next connection verifies the host against its new pin.
#[utoipa::path(post, operation_id = "accept_host_keys", path = "/servers/host-keys/accept", tag = "servers", request_body = BulkAccept, responses((status = 200, body = BulkAcceptResult), (status = 404, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn accept(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<BulkAccept>,
) -> ApiResult<Json<BulkAcceptResult>> {
    if req.keys.is_empty() {
        return Err(ApiError::missing("keys"));
    }
    let names: Vec<String> = req.keys.iter().map(|k| k.server.clone()).collect();
    let servers = servers_named(&state, &names).await?;
    for k in &req.keys {
        if !valid_fingerprint(&k.fingerprint) {
            return Err(ApiError::invalid(
                "fingerprint",
                format!(
                    "`{}` is not a SHA256 fingerprint (`SHA256:` and 43 base64 characters)",
                    k.fingerprint
                ),
            ));
        }
    }
    let ops: Vec<remora_store::ImportOp> = servers
        .iter()
        .zip(&req.keys)
        .map(|(s, k)| remora_store::ImportOp::PinHostKey {
            id: s.id.clone(),
            fingerprint: k.fingerprint.clone(),
        })
        .collect();
    state.store.apply_import(&ops).await?;
    let mut out = vec![];
    for (s, k) in servers.iter().zip(&req.keys) {
        let detail = format!(
            "{} -> {} (bulk review)",
            s.host_key_fingerprint.as_deref().unwrap_or("(none)"),
            k.fingerprint
        );
        tracing::warn!(server_id = %s.id, %detail, "host key accepted");
        crate::audit(
            &state,
            &caller,
            "server.host_key.accept",
            "server",
            Some(&s.id),
            Some(&detail),
        )
        .await;
        out.push(crate::lookup::server(&state, &s.id).await?);
    }
    Ok(Json(BulkAcceptResult {
        accepted: out.len(),
        servers: out,
    }))
}
