//! `/tokens`: API tokens (stored hashed; the secret is shown once), and the
//! audit log. Admin only.

use crate::auth::{generate_token, hash_token, Caller};
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

pub const ROLES: [&str; 3] = ["admin", "operator", "viewer"];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{id}", delete(revoke))
        .route("/audit", get(audit_log))
}

fn admin_only(c: &Caller) -> ApiResult<()> {
    if c.role != "admin" {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "only admin tokens manage tokens and read the audit log"));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: Option<String>,
    pub role: Option<String>,
}

async fn create(State(state): State<AppState>, Extension(caller): Extension<Caller>, JsonBody(b): JsonBody<NewToken>) -> ApiResult<(StatusCode, Json<Value>)> {
    admin_only(&caller)?;
    let name = b.name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).ok_or_else(|| ApiError::missing("name"))?;
    if name.len() > 100 {
        return Err(ApiError::invalid("name", "name must be at most 100 characters"));
    }
    let role = b.role.unwrap_or_else(|| "operator".into());
    if !ROLES.contains(&role.as_str()) {
        return Err(ApiError::invalid("role", "role must be admin, operator or viewer"));
    }
    let token = generate_token();
    let id = state.store.insert_token(&name, &hash_token(&token), &role).await?;
    crate::audit(&state, &caller, "token.create", "token", Some(&id), Some(&name)).await;
    Ok((StatusCode::CREATED, Json(json!({ "id": id, "name": name, "role": role, "created_at": remora_domain::time::ms_to_rfc3339(remora_domain::time::now_ms()), "token": token }))))
}

async fn list(State(state): State<AppState>, Extension(caller): Extension<Caller>) -> ApiResult<Json<Value>> {
    admin_only(&caller)?;
    Ok(Json(json!({ "tokens": state.store.list_tokens().await? })))
}

async fn revoke(State(state): State<AppState>, Extension(caller): Extension<Caller>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    admin_only(&caller)?;
    if id == caller.token_id {
        return Err(ApiError::new(StatusCode::CONFLICT, "conflict", "a token cannot revoke itself"));
    }
    if !state.store.revoke_token(&id).await? {
        return Err(ApiError::not_found("token", &id));
    }
    crate::audit(&state, &caller, "token.revoke", "token", Some(&id), None).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct AuditQuery {
    pub limit: Option<i64>,
}

async fn audit_log(State(state): State<AppState>, Extension(caller): Extension<Caller>, Query(q): Query<AuditQuery>) -> ApiResult<Json<Value>> {
    admin_only(&caller)?;
    Ok(Json(json!({ "entries": state.store.list_audit(q.limit.unwrap_or(100)).await? })))
}
