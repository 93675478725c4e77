//! `/tokens`: API tokens (stored hashed; the secret is shown once), and the
//! audit log (admin only); `/me`: the calling token's own id and role (any role).

use crate::auth::{generate_token, hash_token, Caller};
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::openapi::{AuditList, Me, TokenCreated, TokenList};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

pub const ROLES: [&str; 3] = ["admin", "operator", "viewer"];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
        .routes(routes!(audit_log))
        .routes(routes!(me))
}

/// The calling token's id and role (every role may ask: the dashboard hides write actions
/// from a `viewer`).
#[utoipa::path(get, operation_id = "whoami", path = "/me", tag = "admin", responses((status = 200, body = Me), (status = 401, body = crate::openapi::ErrorBody)))]
async fn me(Extension(caller): Extension<Caller>) -> Json<Me> {
    Json(Me {
        token_id: caller.token_id,
        role: caller.role,
    })
}

fn admin_only(c: &Caller) -> ApiResult<()> {
    if c.role != "admin" {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only admin tokens manage tokens and read the audit log",
        ));
    }
    Ok(())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: Option<String>,
    pub role: Option<String>,
}

/// Create a token; its secret is in this response only.
#[utoipa::path(post, operation_id = "create_token", path = "/tokens", tag = "admin", request_body = NewToken, responses((status = 201, body = TokenCreated), (status = 403, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(b): JsonBody<NewToken>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    admin_only(&caller)?;
    let name = b
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::missing("name"))?;
    if name.len() > 100 {
        return Err(ApiError::invalid(
            "name",
            "name must be at most 100 characters",
        ));
    }
    let role = b.role.unwrap_or_else(|| "operator".into());
    if !ROLES.contains(&role.as_str()) {
        return Err(ApiError::invalid(
            "role",
            "role must be admin, operator or viewer",
        ));
    }
    let token = generate_token();
    let id = state
        .store
        .insert_token(&name, &hash_token(&token), &role)
        .await?;
    crate::audit(
        &state,
        &caller,
        "token.create",
        "token",
        Some(&id),
        Some(&name),
    )
    .await;
    let created_at = remora_domain::time::ms_to_rfc3339(remora_domain::time::now_ms());
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            id,
            name,
            role,
            created_at,
            token,
        }),
    ))
}

/// List tokens (never their secrets).
#[utoipa::path(get, operation_id = "list_tokens", path = "/tokens", tag = "admin", responses((status = 200, body = TokenList), (status = 403, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<TokenList>> {
    admin_only(&caller)?;
    Ok(Json(TokenList {
        tokens: state.store.list_tokens().await?,
    }))
}

/// Revoke a token.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "admin", params(("id" = String, Path, description = "Token id")), responses((status = 204, description = "Revoked"), (status = 403, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    admin_only(&caller)?;
    if id == caller.token_id {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "a token cannot revoke itself",
        ));
    }
    if !state.store.revoke_token(&id).await? {
        return Err(ApiError::not_found("token", &id));
    }
    state.tokens.clear();
    crate::audit(&state, &caller, "token.revoke", "token", Some(&id), None).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub limit: Option<i64>,
}

/// Recent mutating actions, newest first.
#[utoipa::path(get, path = "/audit", tag = "admin", params(AuditQuery), responses((status = 200, body = AuditList), (status = 403, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn audit_log(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<AuditList>> {
    admin_only(&caller)?;
    Ok(Json(AuditList {
        entries: state.store.list_audit(q.limit.unwrap_or(100)).await?,
    }))
}
