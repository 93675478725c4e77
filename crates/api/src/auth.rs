//! Bearer-token authentication. Tokens are stored as SHA-256 hashes; the
//! admin token comes from `REMORA_ADMIN_TOKEN` or is generated on first
//! start, printed once and written 0600 into the data dir.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::path::Path;

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn generate_token() -> String {
    let mut b = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("rmr_{}", hex::encode(b))
}

/// Per-token request limiter (`None` when disabled).
pub type Limiter = Option<governor::DefaultKeyedRateLimiter<String>>;

pub fn limiter(per_second: u32) -> Limiter {
    let rate = std::num::NonZeroU32::new(per_second)?;
    let burst = std::num::NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
    Some(governor::RateLimiter::keyed(
        governor::Quota::per_second(rate).allow_burst(burst),
    ))
}

/// Who made the request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
    pub role: String,
}

/// What a process says after generating the admin token: where to read it, never the token
/// itself (stderr ends up in docker's and journald's logs).
pub fn generated_token_notice(data_dir: &Path) -> String {
    format!(
        "Generated an admin token: read it from {} (mode 0600)",
        data_dir.join("admin.token").display()
    )
}

/// Make sure an admin token exists. Returns a freshly generated token (to
/// print once) when one had to be created.
pub async fn seed_admin(
    store: &remora_store::Store,
    env_token: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<Option<String>> {
    if let Some(t) = env_token.filter(|t| !t.is_empty()) {
        let h = hash_token(t);
        // A revoked bootstrap token stays revoked (and its hash is UNIQUE):
        // only a token never seen before is inserted.
        if !store.token_hash_known(&h).await? {
            store
                .insert_token("admin (REMORA_ADMIN_TOKEN)", &h, "admin")
                .await?;
        } else if store.find_token(&h).await?.is_none() {
            tracing::warn!(
                "REMORA_ADMIN_TOKEN was revoked and stays revoked: set a new value to bootstrap a new admin token"
            );
        }
        return Ok(None);
    }
    let path = data_dir.join("admin.token");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let t = existing.trim();
        if !t.is_empty() {
            let h = hash_token(t);
            if !store.token_hash_known(&h).await? {
                store.insert_token("admin (generated)", &h, "admin").await?;
            } else if store.find_token(&h).await?.is_none() {
                tracing::warn!(
                    path = %path.display(),
                    "the generated admin token was revoked and stays revoked: delete the file to generate a new one"
                );
            }
            return Ok(None);
        }
    }
    let t = generate_token();
    std::fs::create_dir_all(data_dir)?;
    remora_store::vault::write_private_file(&path, format!("{t}\n").as_bytes())?;
    store
        .insert_token("admin (generated)", &hash_token(&t), "admin")
        .await?;
    Ok(Some(t))
}

/// Tokens that were valid when last read, for [`ApiConfig::auth_cache_ms`]: a client's requests
/// then do not each read the token table. Only valid tokens are kept (an unknown one is read every
/// time); a revoke through this process clears the cache, so it counts here at once and on other
/// API processes within the TTL. At most [`TOKEN_CACHE_MAX`] entries (then it starts afresh).
///
/// [`ApiConfig::auth_cache_ms`]: crate::config::ApiConfig::auth_cache_ms
pub struct TokenCache {
    ttl: std::time::Duration,
    map: std::sync::Mutex<std::collections::HashMap<String, (String, String, std::time::Instant)>>,
}

/// Most tokens [`TokenCache`] holds.
pub const TOKEN_CACHE_MAX: usize = 10_000;

impl TokenCache {
    pub fn new(ttl_ms: u64) -> TokenCache {
        TokenCache {
            ttl: std::time::Duration::from_millis(ttl_ms),
            map: Default::default(),
        }
    }

    /// The token's id and role, if it was read valid within the TTL.
    pub fn get(&self, hash: &str) -> Option<(String, String)> {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.map.lock().ok()?;
        let (id, role, at) = map.get(hash)?;
        (at.elapsed() < self.ttl).then(|| (id.clone(), role.clone()))
    }

    pub fn put(&self, hash: &str, id: &str, role: &str) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= TOKEN_CACHE_MAX {
                map.clear();
            }
            map.insert(
                hash.to_string(),
                (id.to_string(), role.to_string(), std::time::Instant::now()),
            );
        }
    }

    /// Forget every token (after a revoke).
    pub fn clear(&self) {
        if let Ok(mut map) = self.map.lock() {
            map.clear();
        }
    }
}

pub async fn require_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // Only the header: a token in the URL (`?access_token=`) would end up in
    // proxies' and browsers' logs.
    let token = match header {
        Some(h) => match h
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            Some(t) => t.to_string(),
            None => {
                return Err(ApiError::unauthorized(
                    "the Authorization header must be `Bearer <token>`",
                ))
            }
        },
        None => {
            return Err(ApiError::unauthorized(
                "missing `Authorization: Bearer <token>` header",
            ))
        }
    };
    let hash = hash_token(&token);
    let found = match state.tokens.get(&hash) {
        Some(hit) => Some(hit),
        None => {
            let read = state.store.find_token(&hash).await?;
            if let Some((id, role)) = &read {
                state.tokens.put(&hash, id, role);
            }
            read
        }
    };
    match found {
        Some((token_id, role)) => {
            if let Some(l) = state.limiter.as_ref() {
                if let Err(not_until) = l.check_key(&token_id) {
                    let wait = not_until.wait_time_from(governor::clock::Clock::now(
                        &governor::clock::DefaultClock::default(),
                    ));
                    let secs = wait.as_secs() + 1;
                    let resp = ApiError::new(
                        axum::http::StatusCode::TOO_MANY_REQUESTS,
                        "rate_limited",
                        format!("too many requests for this token; retry in {secs} s"),
                    )
                    .retry_after(secs);
                    return Ok(axum::response::IntoResponse::into_response(resp));
                }
            }
            if role == "viewer" && req.method() != axum::http::Method::GET {
                return Err(ApiError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "forbidden",
                    "this token is read-only (role viewer)",
                ));
            }
            req.extensions_mut().insert(Caller { token_id, role });
            Ok(next.run(req).await)
        }
        None => Err(ApiError::unauthorized(
            "the token is invalid or was revoked",
        )),
    }
}
