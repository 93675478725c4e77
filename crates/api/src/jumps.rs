//! A server's jump host (`jump_server_id` on create and update): the named
//! server must exist, the chain must not loop and must stay within
//! `REMORA_MAX_JUMP_DEPTH` hops (each a 422 naming `jump_server_id`).

use crate::error::{ApiError, ApiResult};
use crate::AppState;
use remora_ssh::chain::{jump_servers, ChainError};

/// The id the jump host `jump` (id or name) resolves to, after checking the
/// chain it starts for the server `this` (id and name; `None` while
/// creating). `""` clears the jump host (`Ok(None)`).
pub async fn resolve(
    state: &AppState,
    this: Option<(&str, &str)>,
    jump: &str,
) -> ApiResult<Option<String>> {
    let jump = jump.trim();
    if jump.is_empty() {
        return Ok(None);
    }
    let field = "jump_server_id";
    let target = match state.store.get_server(jump).await? {
        Some(s) => Some(s),
        None => state.store.get_server_by_name(jump).await?,
    };
    let Some(target) = target else {
        return Err(ApiError::invalid(
            field,
            format!("jump server `{jump}` does not exist"),
        ));
    };
    let chain = jump_servers(
        &state.store,
        this,
        Some(&target.id),
        state.cfg.max_jump_depth,
    )
    .await?;
    match chain {
        Ok(_) => Ok(Some(target.id)),
        Err(e @ (ChainError::Loop(_) | ChainError::TooDeep { .. } | ChainError::Unknown(_))) => {
            Err(ApiError::invalid(field, e.to_string()))
        }
    }
}
