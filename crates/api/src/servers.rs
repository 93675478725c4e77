//! `/servers`: SSH targets. Secrets are sealed on the way in and never
//! returned: responses carry `has_password`, `has_private_key` and
//! `pem_file_id` instead.

use crate::error::{ApiError, ApiResult, JsonBody};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use remora_domain::{AuthType, Server};
use remora_store::NewServer;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/servers", get(list).post(create))
        .route("/servers/{id}", get(get_one).delete(delete))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateServer {
    pub name: Option<String>,
    pub hostname: Option<String>,
    pub port: Option<i64>,
    #[serde(alias = "username")]
    pub user: Option<String>,
    pub auth_type: Option<String>,
    pub password: Option<String>,
    pub private_key: Option<String>,
    pub passphrase: Option<String>,
    pub pem_file_id: Option<String>,
    pub tags: Option<Vec<String>>,
    pub max_concurrency: Option<i64>,
    pub is_active: Option<bool>,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn valid_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && (s.parse::<std::net::IpAddr>().is_ok()
            || s.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !l.starts_with('-')))
}

pub fn validate_new(state: &AppState, b: CreateServer) -> ApiResult<NewServer> {
    let name = b.name.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).ok_or_else(|| ApiError::missing("name"))?;
    if !valid_name(&name) {
        return Err(ApiError::invalid("name", "name must be 1–64 characters of letters, digits, `-`, `_` or `.`"));
    }
    let hostname = b.hostname.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).ok_or_else(|| ApiError::missing("hostname"))?;
    if !valid_hostname(&hostname) {
        return Err(ApiError::invalid("hostname", format!("`{hostname}` is not a valid hostname or IP address")));
    }
    let port = b.port.unwrap_or(22);
    if !(1..=65535).contains(&port) {
        return Err(ApiError::invalid("port", "port must be between 1 and 65535"));
    }
    let user = b.user.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).ok_or_else(|| ApiError::missing("user"))?;
    if user.len() > 64 || user.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::invalid("user", "user must be at most 64 characters without spaces"));
    }
    let auth_type = match b.auth_type.as_deref() {
        None => None,
        Some(s) => Some(AuthType::parse(s).ok_or_else(|| ApiError::invalid("auth_type", "auth_type must be `password` or `key`"))?),
    };
    let password = b.password.filter(|p| !p.is_empty());
    let private_key = b.private_key.filter(|k| !k.trim().is_empty());
    let passphrase = b.passphrase.filter(|p| !p.is_empty());
    if let Some(k) = &private_key {
        remora_ssh::parse_private_key(k, passphrase.as_deref())
            .map_err(|e| ApiError::invalid("private_key", format!("private_key is not a usable private key: {e}")))?;
    }
    if password.is_none() && private_key.is_none() && b.pem_file_id.is_none() {
        return Err(ApiError::invalid("password", "give a `password`, a `private_key` or a `pem_file_id`"));
    }
    match auth_type {
        Some(AuthType::Password) if password.is_none() => return Err(ApiError::missing("password")),
        Some(AuthType::Key) if private_key.is_none() && b.pem_file_id.is_none() => return Err(ApiError::missing("private_key")),
        _ => {}
    }
    let tags = b.tags.unwrap_or_default();
    for t in &tags {
        if !valid_name(t) {
            return Err(ApiError::invalid("tags", format!("tag `{t}` must be 1–64 characters of letters, digits, `-`, `_` or `.`")));
        }
    }
    let max_concurrency = b.max_concurrency.unwrap_or(10);
    if !(1..=1000).contains(&max_concurrency) {
        return Err(ApiError::invalid("max_concurrency", "max_concurrency must be between 1 and 1000"));
    }
    let auth_type = auth_type.or(Some(if private_key.is_some() || b.pem_file_id.is_some() { AuthType::Key } else { AuthType::Password }));
    Ok(NewServer {
        name,
        hostname,
        port,
        user,
        auth_type,
        password_enc: password.map(|p| state.vault.seal(p.as_bytes())),
        private_key_enc: private_key.map(|k| state.vault.seal(k.as_bytes())),
        passphrase_enc: passphrase.map(|p| state.vault.seal(p.as_bytes())),
        pem_file_id: b.pem_file_id,
        is_active: b.is_active.unwrap_or(true),
        tags,
        max_concurrency,
    })
}

async fn create(State(state): State<AppState>, JsonBody(body): JsonBody<CreateServer>) -> ApiResult<(StatusCode, Json<Server>)> {
    let new = validate_new(&state, body)?;
    let name = new.name.clone();
    match state.store.insert_server(&new).await {
        Ok(s) => {
            tracing::info!(server_id = %s.id, name = %s.name, "server created");
            Ok((StatusCode::CREATED, Json(s)))
        }
        Err(remora_store::StoreError::Conflict) => Err(ApiError::conflict("name", format!("a server named `{name}` already exists"))),
        Err(e) => Err(e.into()),
    }
}

async fn list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let servers = state.store.list_servers().await?;
    Ok(Json(json!({ "servers": servers, "total": servers.len() })))
}

/// Look a server up by id, or by name.
pub async fn find(state: &AppState, id_or_name: &str) -> ApiResult<Server> {
    if let Some(s) = state.store.get_server(id_or_name).await? {
        return Ok(s);
    }
    if let Some(s) = state.store.get_server_by_name(id_or_name).await? {
        return Ok(s);
    }
    Err(ApiError::not_found("server", id_or_name))
}

async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Server>> {
    Ok(Json(find(&state, &id).await?))
}

async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let s = find(&state, &id).await?;
    state.store.delete_server(&s.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
