//! `/trusted-cas`: CA public keys whose host certificates stand in for a pinned host key.
//!
//! Each CA vouches only for the hosts its `patterns` cover (OpenSSH `known_hosts` patterns:
//! `*` and `?` wildcards, a leading `!` negates, matched against the host and `[host]:port`).
//! The worker and the server checks read the list at every new connection, so adding or
//! removing a CA counts from the next connection on.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use remora_store::TrustedCaRow;
use russh::keys::HashAlg;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

/// The default of `REMORA_MAX_CA_PATTERNS`: at most this many patterns per CA (each at most
/// 255 characters).
pub const DEFAULT_MAX_PATTERNS: usize = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, remove))
}

/// Create (all required) or update (`name`, `patterns`) a trusted CA.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustedCaBody {
    /// Unique; 1–64 letters, digits, `-`, `_`, `.`.
    pub name: Option<String>,
    /// The CA's public key line (`ssh-ed25519 AAAA… comment`); fixed once created.
    pub public_key: Option<String>,
    /// Host patterns it may vouch for, e.g. `["*.prod.example.com", "!db.prod.example.com"]`
    /// (at most `REMORA_MAX_CA_PATTERNS`, default 100).
    pub patterns: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct TrustedCa {
    pub id: String,
    pub name: String,
    pub public_key: String,
    pub key_type: String,
    /// `SHA256:…` of the CA key.
    pub fingerprint: String,
    pub patterns: Vec<String>,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TrustedCaList {
    pub trusted_cas: Vec<TrustedCa>,
    pub total: usize,
}

impl From<TrustedCaRow> for TrustedCa {
    fn from(r: TrustedCaRow) -> Self {
        TrustedCa {
            id: r.id,
            name: r.name,
            public_key: r.public_key,
            key_type: r.key_type,
            fingerprint: r.fingerprint,
            patterns: r.patterns,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn check_name(n: &str) -> ApiResult<String> {
    let n = n.trim();
    if n.is_empty()
        || n.len() > 64
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ApiError::invalid(
            "name",
            "name must be 1–64 characters of letters, digits, `-`, `_` or `.`",
        ));
    }
    Ok(n.to_string())
}

fn check_patterns(p: &[String], max: usize) -> ApiResult<Vec<String>> {
    if p.is_empty() {
        return Err(ApiError::invalid(
            "patterns",
            "give at least one host pattern (`*` trusts the CA for every host)",
        ));
    }
    if p.len() > max {
        return Err(ApiError::invalid(
            "patterns",
            format!(
                "{} patterns given; a trusted CA takes at most {max} (REMORA_MAX_CA_PATTERNS)",
                p.len()
            ),
        ));
    }
    let mut out = Vec::new();
    for x in p {
        let x = x.trim();
        if x.is_empty()
            || x == "!"
            || x.len() > 255
            || x.chars().any(|c| c.is_whitespace() || c == ',')
        {
            return Err(ApiError::invalid(
                "patterns",
                format!(
                    "`{x}` is not a host pattern (no spaces or commas, at most 255 characters)"
                ),
            ));
        }
        out.push(x.to_string());
    }
    if out.iter().all(|x| x.starts_with('!')) {
        return Err(ApiError::invalid(
            "patterns",
            "only negated patterns match no host; add a positive one",
        ));
    }
    Ok(out)
}

async fn find(state: &AppState, id: &str) -> ApiResult<TrustedCaRow> {
    state
        .store
        .get_trusted_ca(id)
        .await?
        .ok_or_else(|| ApiError::not_found("trusted CA", id))
}

fn conflict(e: remora_store::StoreError, name: &str) -> ApiError {
    match e {
        remora_store::StoreError::Conflict { .. } => ApiError::conflict(
            "name",
            format!("a trusted CA named `{name}` already exists"),
        ),
        e => e.into(),
    }
}

/// Every trusted CA, by name.
#[utoipa::path(get, operation_id = "list_trusted_cas", path = "/trusted-cas", tag = "trusted-cas", responses((status = 200, body = TrustedCaList), (status = 401, body = crate::openapi::ErrorBody)))]
async fn list(State(state): State<AppState>) -> ApiResult<Json<TrustedCaList>> {
    let cas: Vec<TrustedCa> = state
        .store
        .list_trusted_cas()
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(TrustedCaList {
        total: cas.len(),
        trusted_cas: cas,
    }))
}

/// Trust a CA for the hosts its patterns cover (operator; audited).
#[utoipa::path(post, operation_id = "create_trusted_ca", path = "/trusted-cas", tag = "trusted-cas", request_body = TrustedCaBody, responses((status = 201, body = TrustedCa), (status = 409, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(b): JsonBody<TrustedCaBody>,
) -> ApiResult<(StatusCode, Json<TrustedCa>)> {
    let name = check_name(b.name.as_deref().ok_or_else(|| ApiError::missing("name"))?)?;
    let line = b
        .public_key
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::missing("public_key"))?;
    let key = remora_ssh::trust::parse_public_key(line)
        .map_err(|e| ApiError::invalid("public_key", e))?;
    let patterns = check_patterns(
        b.patterns.as_deref().unwrap_or(&[]),
        state.cfg.max_ca_patterns,
    )?;
    let fp = key.fingerprint(HashAlg::Sha256).to_string();
    let row = state
        .store
        .insert_trusted_ca(&name, line, key.algorithm().as_str(), &fp, &patterns)
        .await
        .map_err(|e| conflict(e, &name))?;
    let detail = format!("{fp} for {}", patterns.join(","));
    tracing::info!(ca = %name, %detail, "trusted CA added");
    crate::audit(
        &state,
        &caller,
        "trusted_ca.create",
        "trusted_ca",
        Some(&row.id),
        Some(&detail),
    )
    .await;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// One trusted CA.
#[utoipa::path(get, operation_id = "get_trusted_ca", path = "/trusted-cas/{id}", tag = "trusted-cas", params(("id" = String, Path, description = "CA id or name")), responses((status = 200, body = TrustedCa), (status = 404, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<TrustedCa>> {
    Ok(Json(find(&state, &id).await?.into()))
}

/// Rename a CA or change its patterns (operator; audited). The key cannot change: add a new CA.
#[utoipa::path(put, operation_id = "update_trusted_ca", path = "/trusted-cas/{id}", tag = "trusted-cas", params(("id" = String, Path, description = "CA id or name")), request_body = TrustedCaBody, responses((status = 200, body = TrustedCa), (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<TrustedCaBody>,
) -> ApiResult<Json<TrustedCa>> {
    let cur = find(&state, &id).await?;
    if let Some(k) = &b.public_key {
        if k.trim() != cur.public_key.trim() {
            return Err(ApiError::invalid(
                "public_key",
                "a CA's key cannot change; add a new CA and remove this one",
            ));
        }
    }
    let name = match &b.name {
        Some(n) => check_name(n)?,
        None => cur.name.clone(),
    };
    let patterns = match &b.patterns {
        Some(p) => check_patterns(p, state.cfg.max_ca_patterns)?,
        None => cur.patterns.clone(),
    };
    state
        .store
        .update_trusted_ca(&cur.id, &name, &patterns)
        .await
        .map_err(|e| conflict(e, &name))?;
    let detail = format!("{} for {}", cur.fingerprint, patterns.join(","));
    crate::audit(
        &state,
        &caller,
        "trusted_ca.update",
        "trusted_ca",
        Some(&cur.id),
        Some(&detail),
    )
    .await;
    Ok(Json(find(&state, &cur.id).await?.into()))
}

/// Stop trusting a CA (operator; audited); counts from the next connection.
#[utoipa::path(delete, operation_id = "delete_trusted_ca", path = "/trusted-cas/{id}", tag = "trusted-cas", params(("id" = String, Path, description = "CA id or name")), responses((status = 204, description = "Deleted"), (status = 404, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn remove(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let cur = find(&state, &id).await?;
    state.store.delete_trusted_ca(&cur.id).await?;
    tracing::warn!(ca = %cur.name, fingerprint = %cur.fingerprint, "trusted CA removed");
    crate::audit(
        &state,
        &caller,
        "trusted_ca.delete",
        "trusted_ca",
        Some(&cur.id),
        Some(&cur.fingerprint),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
