//! The object a request's path names, or the API's 404: shared by the
//! resource modules so none imports another for a lookup.

use crate::error::{ApiError, ApiResult};
use crate::AppState;
use remora_domain::{Job, Server};

/// A job by id.
pub async fn job(state: &AppState, id: &str) -> ApiResult<Job> {
    state
        .store
        .get_job(id)
        .await?
        .ok_or_else(|| ApiError::not_found("job", id))
}

/// A server by id, or by name.
pub async fn server(state: &AppState, id_or_name: &str) -> ApiResult<Server> {
    if let Some(s) = state.store.get_server(id_or_name).await? {
        return Ok(s);
    }
    if let Some(s) = state.store.get_server_by_name(id_or_name).await? {
        return Ok(s);
    }
    Err(ApiError::not_found("server", id_or_name))
}
