//! `/servers`: SSH targets. Secrets are sealed on the way in and never
//! returned: responses carry `has_password`, `has_private_key`,
//! `pem_file_id` and `credential_id` instead.
//!
//! A server logs in with a credential (`/credentials`): `credential_id` (id or
//! name) shares one; inline `password` / `private_key` / `passphrase` /
//! `sudo_password` still work and make the server's private credential
//! (`server:NAME`, deleted with the server); a bare `pem_file_id` shares that
//! upload's credential.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, JsonBody, OnConstraint, SERVER_NAME_KEY};
use crate::openapi::{BulkStatus, ServerList};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use remora_domain::{AuthType, Server};
use remora_store::NewServer;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(stored_bulk_status, check_bulk))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(test))
        .routes(routes!(stored_status, check_one))
        .routes(routes!(accept_host_key))
}

/// Create (all required but noted) or update (all optional) a server.
#[derive(Deserialize, Default, utoipa::ToSchema)]
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
    /// The server (id or name) this one is reached through; `""` on update
    /// removes it. Unknown servers, loops and chains longer than
    /// `REMORA_MAX_JUMP_DEPTH` are a 422.
    pub jump_server_id: Option<String>,
    /// The credential (id or name) to log in with; excludes the inline secrets.
    pub credential_id: Option<String>,
    /// The password sudo asks for (`become`); goes to the server's private credential.
    pub sudo_password: Option<String>,
}

impl CreateServer {
    fn has_secret_fields(&self) -> bool {
        self.password.is_some()
            || self.private_key.is_some()
            || self.passphrase.is_some()
            || self.pem_file_id.is_some()
            || self.sudo_password.is_some()
    }
}

fn name_taken(name: &str) -> ApiError {
    ApiError::conflict("name", format!("a server named `{name}` already exists"))
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn valid_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && (s.parse::<std::net::IpAddr>().is_ok()
            || s.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !l.starts_with('-')
            }))
}

/// A 422 unless `private_key` (when given) parses with `passphrase`: parsed
/// off the runtime under the configured rounds cap and time limit
/// (`REMORA_MAX_KDF_ROUNDS`), so one key cannot stall the API.
pub async fn check_key(state: &AppState, b: &CreateServer) -> ApiResult<()> {
    let Some(k) = b.private_key.as_deref().filter(|k| !k.trim().is_empty()) else {
        return Ok(());
    };
    let passphrase = b.passphrase.as_deref().filter(|p| !p.is_empty());
    remora_ssh::parse_private_key_async(k, passphrase, state.cfg.key_limits)
        .await
        .map(|_| ())
        .map_err(|e| {
            ApiError::invalid(
                "private_key",
                format!("private_key is not a usable private key: {e}"),
            )
        })
}

/// Check a server body (all but the private key's parse: [`check_key`]).
pub fn validate_new(state: &AppState, b: CreateServer) -> ApiResult<NewServer> {
    validate_with(state, b, None)
}

/// Validate a server; `credential` is the resolved `credential_id`, if any.
pub fn validate_with(
    state: &AppState,
    b: CreateServer,
    credential: Option<&remora_store::Credential>,
) -> ApiResult<NewServer> {
    if credential.is_some() && b.has_secret_fields() {
        return Err(ApiError::invalid(
            "credential_id",
            "give either `credential_id` or inline secrets (password, private_key, passphrase, pem_file_id, sudo_password), not both",
        ));
    }
    let name = b
        .name
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::missing("name"))?;
    if !valid_name(&name) {
        return Err(ApiError::invalid(
            "name",
            "name must be 1–64 characters of letters, digits, `-`, `_` or `.`",
        ));
    }
    let hostname = b
        .hostname
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::missing("hostname"))?;
    if !valid_hostname(&hostname) {
        return Err(ApiError::invalid(
            "hostname",
            format!("`{hostname}` is not a valid hostname or IP address"),
        ));
    }
    let port = b.port.unwrap_or(22);
    if !(1..=65535).contains(&port) {
        return Err(ApiError::invalid(
            "port",
            "port must be between 1 and 65535",
        ));
    }
    let user = b
        .user
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::missing("user"))?;
    if user.len() > 64 || user.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::invalid(
            "user",
            "user must be at most 64 characters without spaces",
        ));
    }
    let auth_type = match b.auth_type.as_deref() {
        None => None,
        Some(s) => Some(AuthType::parse(s).ok_or_else(|| {
            ApiError::invalid("auth_type", "auth_type must be `password` or `key`")
        })?),
    };
    let password = b.password.filter(|p| !p.is_empty());
    let sudo_password = b.sudo_password.filter(|p| !p.is_empty());
    if let Some(p) = &sudo_password {
        crate::credentials::check_sudo_password(p)?;
    }
    let private_key = b.private_key.filter(|k| !k.trim().is_empty());
    let passphrase = b.passphrase.filter(|p| !p.is_empty());
    if password.is_none()
        && private_key.is_none()
        && b.pem_file_id.is_none()
        && credential.is_none()
    {
        return Err(ApiError::invalid(
            "password",
            "give a `credential_id`, a `password`, a `private_key` or a `pem_file_id`",
        ));
    }
    let auth_type = match credential {
        Some(c) => AuthType::parse(&c.kind),
        None => auth_type,
    };
    match auth_type {
        _ if credential.is_some() => {}
        Some(AuthType::Password) if password.is_none() => {
            return Err(ApiError::missing("password"))
        }
        Some(AuthType::Key) if private_key.is_none() && b.pem_file_id.is_none() => {
            return Err(ApiError::missing("private_key"))
        }
        _ => {}
    }
    let tags = b.tags.unwrap_or_default();
    for t in &tags {
        if !valid_name(t) {
            return Err(ApiError::invalid(
                "tags",
                format!("tag `{t}` must be 1–64 characters of letters, digits, `-`, `_` or `.`"),
            ));
        }
    }
    let max_concurrency = b.max_concurrency.unwrap_or(10);
    if !(1..=1000).contains(&max_concurrency) {
        return Err(ApiError::invalid(
            "max_concurrency",
            "max_concurrency must be between 1 and 1000",
        ));
    }
    let auth_type = auth_type.or(Some(if private_key.is_some() || b.pem_file_id.is_some() {
        AuthType::Key
    } else {
        AuthType::Password
    }));
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
        credential_id: credential.map(|c| c.id.clone()),
        sudo_password_enc: sudo_password.map(|p| state.vault.seal(p.as_bytes())),
    })
}

/// Register a server. Secrets are encrypted at rest and never returned.
#[utoipa::path(post, operation_id = "create_server", path = "/servers", tag = "servers", request_body = CreateServer, responses((status = 201, body = Server), (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<CreateServer>,
) -> ApiResult<(StatusCode, Json<Server>)> {
    if let Some(p) = &body.pem_file_id {
        if state.store.get_pem(p).await?.is_none() {
            return Err(ApiError::not_found("pem file", p).with_field("pem_file_id"));
        }
    }
    let jump = match &body.jump_server_id {
        Some(j) => crate::jumps::resolve(&state, None, j).await?,
        None => None,
    };
    let cred = match body.credential_id.as_deref() {
        Some(c) => Some(
            crate::credentials::resolve(&state, c)
                .await
                .map_err(|e| e.with_field("credential_id"))?,
        ),
        None => None,
    };
    check_key(&state, &body).await?;
    let new = validate_with(&state, body, cred.as_ref())?;
    let name = new.name.clone();
    let mut s = state
        .store
        .insert_server(&new)
        .await
        .on_constraint(SERVER_NAME_KEY, || name_taken(&name))?;
    if let Some(j) = &jump {
        state.store.set_jump_server(&s.id, Some(j)).await?;
        s.jump_server_id = jump.clone();
    }
    tracing::info!(server_id = %s.id, name = %s.name, "server created");
    crate::audit(
        &state,
        &caller,
        "server.create",
        "server",
        Some(&s.id),
        Some(&s.name),
    )
    .await;
    Ok((StatusCode::CREATED, Json(s)))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ServerListQuery {
    /// Only servers whose name, `user@hostname:port`, tags or id contain this (case-insensitive).
    pub q: Option<String>,
    /// Only servers with exactly this tag.
    pub tag: Option<String>,
    /// `reachable`, `unreachable` (last check), `unchecked` (never checked) or `inactive`.
    pub status: Option<String>,
    /// Skip this many matching servers (default 0).
    pub offset: Option<usize>,
    /// At most this many servers (1 to 1000; default: every matching server).
    pub limit: Option<usize>,
}

/// Largest `limit` of `GET /servers`.
const MAX_SERVER_PAGE: usize = 1000;

/// Servers by name: all of them, or filtered (`q`, `tag`, `status`) and paged
/// (`offset`, `limit`) in the database. `total` counts the matching servers.
#[utoipa::path(get, operation_id = "list_servers", path = "/servers", tag = "servers", params(ServerListQuery), responses((status = 200, body = ServerList), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    Query(q): Query<ServerListQuery>,
) -> ApiResult<Json<ServerList>> {
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(remora_store::ServerState::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "status",
                format!("status must be reachable, unreachable, unchecked or inactive, not `{s}`"),
            )
        })?),
    };
    if let Some(l) = q.limit {
        if !(1..=MAX_SERVER_PAGE).contains(&l) {
            return Err(ApiError::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_SERVER_PAGE}"),
            ));
        }
    }
    let filtered = q.q.as_deref().is_some_and(|s| !s.trim().is_empty())
        || q.tag.as_deref().is_some_and(|s| !s.is_empty())
        || status.is_some()
        || q.offset.is_some()
        || q.limit.is_some();
    if !filtered {
        // Today's response: every server.
        let servers = state.store.list_servers().await?;
        let mut tags: Vec<String> = servers.iter().flat_map(|s| s.tags.clone()).collect();
        tags.sort();
        tags.dedup();
        return Ok(Json(ServerList {
            total: servers.len(),
            active: servers.iter().filter(|s| s.is_active).count(),
            all: servers.len(),
            tags,
            servers,
        }));
    }
    let page = state
        .store
        .list_servers_page(&remora_store::ServerQuery {
            q: q.q.clone(),
            tag: q.tag.clone(),
            status,
            offset: i64::try_from(q.offset.unwrap_or(0)).unwrap_or(i64::MAX),
            limit: q.limit.map(|l| l as i64),
        })
        .await?;
    let (all, tags) = state.store.server_tags().await?;
    Ok(Json(ServerList {
        servers: page.servers,
        total: page.total as usize,
        active: page.active as usize,
        all: all as usize,
        tags,
    }))
}

/// One server.
#[utoipa::path(get, operation_id = "get_server", path = "/servers/{id}", tag = "servers", params(("id" = String, Path, description = "Server id or name")), responses((status = 200, body = Server), (status = 404, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Server>> {
    Ok(Json(crate::lookup::server(&state, &id).await?))
}

/// Delete a server. A server that others are reached through (their jump host) is a 409 naming
/// them in the message and listing them (id, name) in `error.details.servers`.
#[utoipa::path(delete, operation_id = "delete_server", path = "/servers/{id}", tag = "servers", params(("id" = String, Path, description = "Server id or name")), responses((status = 204, description = "Deleted"), (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let s = crate::lookup::server(&state, &id).await?;
    let through = state.store.servers_jumping_through(&s.id).await?;
    if !through.is_empty() {
        let names: Vec<&str> = through.iter().map(|t| t.name.as_str()).collect();
        return Err(ApiError::conflict(
            "id",
            format!(
                "`{}` is the jump host of {}: change their jump host first",
                s.name,
                names.join(", ")
            ),
        )
        .with_servers(through.iter().map(|t| (t.id.clone(), t.name.clone()))));
    }
    state.store.delete_server(&s.id).await?;
    crate::audit(
        &state,
        &caller,
        "server.delete",
        "server",
        Some(&s.id),
        Some(&s.name),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Partial update: absent fields keep their value; an empty `password`,
/// `private_key` or `pem_file_id` string removes that credential.
/// Partial update: absent fields keep their value; an empty `password`, `private_key` or
/// `pem_file_id` removes that credential.
#[utoipa::path(put, operation_id = "update_server", path = "/servers/{id}", tag = "servers", params(("id" = String, Path, description = "Server id or name")), request_body = CreateServer, responses((status = 200, body = Server), (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<CreateServer>,
) -> ApiResult<Json<Server>> {
    let cur = crate::lookup::server(&state, &id).await?;
    let sealed = state
        .store
        .server_secrets(&cur.id)
        .await?
        .ok_or_else(|| ApiError::not_found("server", &id))?;
    let clear = |v: &Option<String>| v.as_deref() == Some("");
    let mut merged = CreateServer {
        name: Some(b.name.clone().unwrap_or(cur.name.clone())),
        hostname: Some(b.hostname.clone().unwrap_or(cur.hostname.clone())),
        port: Some(b.port.unwrap_or(cur.port)),
        user: Some(b.user.clone().unwrap_or(cur.user.clone())),
        auth_type: b.auth_type.clone(),
        password: b.password.clone().filter(|p| !p.is_empty()),
        private_key: b.private_key.clone().filter(|p| !p.is_empty()),
        passphrase: b.passphrase.clone().filter(|p| !p.is_empty()),
        pem_file_id: if clear(&b.pem_file_id) {
            None
        } else {
            b.pem_file_id.clone().or(cur.pem_file_id.clone())
        },
        tags: Some(b.tags.clone().unwrap_or(cur.tags.clone())),
        max_concurrency: Some(b.max_concurrency.unwrap_or(cur.max_concurrency)),
        is_active: Some(b.is_active.unwrap_or(cur.is_active)),
        jump_server_id: None,
        credential_id: None,
        sudo_password: b.sudo_password.clone().filter(|p| !p.is_empty()),
    };
    // Only names, tags and the like change: the credential stays as it is.
    if b.credential_id.is_some() || (!b.has_secret_fields() && b.auth_type.is_none()) {
        let cred =
            match b.credential_id.as_deref() {
                Some(c) => crate::credentials::resolve(&state, c)
                    .await
                    .map_err(|e| e.with_field("credential_id"))?,
                None => match cur.credential_id.as_deref() {
                    Some(c) => crate::credentials::resolve(&state, c).await?,
                    None => return Err(ApiError::invalid(
                        "credential_id",
                        "the server has no credential: give a `credential_id` or inline secrets",
                    )),
                },
            };
        let mut m = merged;
        m.password = None;
        m.private_key = None;
        m.passphrase = None;
        m.sudo_password = None;
        m.auth_type = None;
        if b.credential_id.is_some() {
            m.pem_file_id = None;
        }
        let keep_pem = m.pem_file_id.take();
        if b.has_secret_fields() {
            return Err(ApiError::invalid(
                "credential_id",
                "give either `credential_id` or inline secrets (password, private_key, passphrase, pem_file_id, sudo_password), not both",
            ));
        }
        let mut new = validate_with(&state, m, Some(&cred))?;
        new.pem_file_id = keep_pem;
        return finish_update(&state, &caller, &cur, &b, new).await;
    }
    // Inline secrets over a shared credential: the server gets a private one
    // made of what this request gives (the shared one's secrets are not copied).
    let sealed = if sealed.private || sealed.pem_file_enc.is_some() {
        sealed
    } else {
        remora_store::ServerSecrets::default()
    };
    if let Some(p) = &merged.pem_file_id {
        if state.store.get_pem(p).await?.is_none() {
            return Err(ApiError::not_found("pem file", p).with_field("pem_file_id"));
        }
    }
    // Keep existing sealed secrets unless replaced or cleared; validation
    // needs to know some credential remains.
    let keep_pw = merged.password.is_none() && !clear(&b.password) && sealed.password_enc.is_some();
    let keep_key =
        merged.private_key.is_none() && !clear(&b.private_key) && sealed.private_key_enc.is_some();
    let keep_pass =
        merged.passphrase.is_none() && !clear(&b.passphrase) && sealed.passphrase_enc.is_some();
    if keep_pw {
        merged.password = Some("(kept)".into());
    }
    let key_for_check = merged.private_key.clone();
    if keep_key {
        merged.private_key = None;
    }
    check_key(&state, &merged).await?;
    let mut new = validate_update(&state, merged, keep_key)?;
    if keep_pw {
        new.password_enc = sealed.password_enc.clone();
    }
    if keep_key {
        new.private_key_enc = sealed.private_key_enc.clone();
    }
    if keep_pass && key_for_check.is_none() {
        new.passphrase_enc = sealed.passphrase_enc.clone();
    }
    if b.sudo_password.is_none() {
        new.sudo_password_enc = sealed.sudo_password_enc.clone();
    }
    if new.auth_type.is_none() || b.auth_type.is_none() {
        new.auth_type = Some(
            if new.private_key_enc.is_some() || new.pem_file_id.is_some() {
                AuthType::Key
            } else {
                AuthType::Password
            },
        );
    }
    finish_update(&state, &caller, &cur, &b, new).await
}

async fn finish_update(
    state: &AppState,
    caller: &Caller,
    cur: &Server,
    b: &CreateServer,
    new: NewServer,
) -> ApiResult<Json<Server>> {
    let state = state.clone();
    let jump = match &b.jump_server_id {
        Some(j) => Some(crate::jumps::resolve(&state, Some((&cur.id, &cur.name)), j).await?),
        None => None,
    };
    let name = new.name.clone();
    state
        .store
        .update_server(&cur.id, &new)
        .await
        .on_constraint(SERVER_NAME_KEY, || name_taken(&name))?;
    if let Some(j) = &jump {
        state.store.set_jump_server(&cur.id, j.as_deref()).await?;
    }
    crate::audit(
        &state,
        caller,
        "server.update",
        "server",
        Some(&cur.id),
        Some(&name),
    )
    .await;
    Ok(Json(crate::lookup::server(&state, &cur.id).await?))
}

fn validate_update(state: &AppState, b: CreateServer, has_kept_key: bool) -> ApiResult<NewServer> {
    if has_kept_key && b.password.is_none() && b.pem_file_id.is_none() {
        // validate_new insists on a credential; a kept key is one.
        let mut b2 = b;
        b2.password = Some("(placeholder)".into());
        let mut n = validate_new(state, b2)?;
        n.password_enc = None;
        return Ok(n);
    }
    validate_new(state, b)
}

/// Real SSH login and `true`: latency, host key, precise error. Pins the key on first use.
#[utoipa::path(post, path = "/servers/{id}/test", tag = "servers", params(("id" = String, Path, description = "Server id or name")), responses((status = 200, body = crate::checks::CheckResult), (status = 404, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn test(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<crate::checks::CheckResult>> {
    let s = crate::lookup::server(&state, &id).await?;
    let r = crate::checks::check(&state, &s, true).await;
    audit_check(&state, &caller, &r).await;
    Ok(Json(r))
}

/// The last stored check of one server (no SSH login: viewers may read it).
#[utoipa::path(get, operation_id = "get_server_status", path = "/servers/{id}/status", tag = "servers", params(("id" = String, Path, description = "Server id or name")), responses((status = 200, body = crate::checks::CheckResult), (status = 404, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn stored_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<crate::checks::CheckResult>> {
    let s = crate::lookup::server(&state, &id).await?;
    Ok(Json(crate::checks::stored(&s)))
}

/// Run an SSH login check now (operator, audited); records `last_status` and
/// `last_checked_at` and pins the host key on first use.
#[utoipa::path(post, operation_id = "check_server", path = "/servers/{id}/status", tag = "servers", params(("id" = String, Path, description = "Server id or name")), responses((status = 200, body = crate::checks::CheckResult), (status = 403, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn check_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<crate::checks::CheckResult>> {
    let s = crate::lookup::server(&state, &id).await?;
    let r = crate::checks::check(&state, &s, false).await;
    audit_check(&state, &caller, &r).await;
    Ok(Json(r))
}

async fn audit_check(state: &AppState, caller: &Caller, r: &crate::checks::CheckResult) {
    let detail = match (&r.host_key_status, &r.host_key_fingerprint) {
        (Some(k), Some(fp)) if k == "new" => format!("{} (host key pinned: {fp})", r.status),
        _ => r.status.clone(),
    };
    crate::audit(
        state,
        caller,
        "server.check",
        "server",
        Some(&r.server_id),
        Some(&detail),
    )
    .await;
}

/// The last stored check of every active server (no SSH login).
#[utoipa::path(get, operation_id = "list_server_statuses", path = "/servers/status", tag = "servers", responses((status = 200, body = BulkStatus), (status = 401, body = crate::openapi::ErrorBody)))]
async fn stored_bulk_status(State(state): State<AppState>) -> ApiResult<Json<BulkStatus>> {
    let results: Vec<crate::checks::CheckResult> = state
        .store
        .list_servers()
        .await?
        .iter()
        .filter(|s| s.is_active)
        .map(crate::checks::stored)
        .collect();
    let reachable = results.iter().filter(|r| r.ok).count();
    Ok(Json(BulkStatus {
        total: results.len(),
        reachable,
        took_ms: 0,
        servers: results,
    }))
}

/// Check every active server now, concurrently (bounded concurrency, per-host
/// timeout; operator, each check audited).
#[utoipa::path(post, operation_id = "check_servers", path = "/servers/status", tag = "servers", responses((status = 200, body = BulkStatus), (status = 403, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn check_bulk(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<BulkStatus>> {
    let servers: Vec<Server> = state
        .store
        .list_servers()
        .await?
        .into_iter()
        .filter(|s| s.is_active)
        .collect();
    let started = std::time::Instant::now();
    let results = crate::checks::check_all(&state, servers, false).await;
    for r in &results {
        audit_check(&state, &caller, r).await;
    }
    let reachable = results.iter().filter(|r| r.ok).count();
    Ok(Json(BulkStatus {
        total: results.len(),
        reachable,
        took_ms: started.elapsed().as_millis() as u64,
        servers: results,
    }))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptKey {
    /// The fingerprint the operator expects; refused if the host now presents another.
    pub fingerprint: Option<String>,
}

/// Pin the host key the server presents now (an audited action).
/// Pin the host key the server presents now (audited). With `fingerprint`, only if it matches.
#[utoipa::path(post, path = "/servers/{id}/host-key/accept", tag = "servers", params(("id" = String, Path, description = "Server id or name")), request_body(content = Option<AcceptKey>, content_type = "application/json"), responses((status = 200, body = Server), (status = 400, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody), (status = 502, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn accept_host_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Server>> {
    let s = crate::lookup::server(&state, &id).await?;
    let want: AcceptKey = if body.iter().all(|b| b.is_ascii_whitespace()) {
        AcceptKey::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))?
    };
    let presented = remora_ssh::probe_host_key(&s.hostname, s.port as u16, state.cfg.check_timeout)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                e.code().as_str(),
                format!("could not read the host key: {e}"),
            )
        })?;
    if let Some(want) = &want.fingerprint {
        if *want != presented {
            return Err(ApiError::conflict(
                "fingerprint",
                format!("the host now presents {presented}, not {want}; nothing was changed"),
            ));
        }
    }
    state.store.set_host_key(&s.id, Some(&presented)).await?;
    let detail = format!(
        "{} -> {}",
        s.host_key_fingerprint.as_deref().unwrap_or("(none)"),
        presented
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
    Ok(Json(crate::lookup::server(&state, &s.id).await?))
}
