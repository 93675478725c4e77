//! One module per command group; each owns its clap arguments, builds its
//! requests and hands the typed reply to the renderer. Lookups several
//! groups share (a server by name or id, server names by id) live here.

pub mod batches;
pub mod credentials;
pub mod hostkeys;
pub mod jobs;
pub mod login;
pub mod notifications;
pub mod pem;
pub mod rekey;
pub mod retention;
pub mod schedules;
pub mod servers;
pub mod submit;
pub mod templates;
pub mod tokens;
pub mod workers;

use crate::client::{enc, Api, Reply};
use crate::responses::ServerList;
use anyhow::Result;
use remora_domain::Server;
use std::collections::HashMap;

/// A server by name or id.
pub async fn resolve_server(api: &Api, name_or_id: &str) -> Result<Reply<Server>> {
    api.get_as(&format!("/api/v1/servers/{}", enc(name_or_id)))
        .await
}

/// Every server's name by its id.
pub async fn server_names(api: &Api) -> Result<HashMap<String, String>> {
    let list: Reply<ServerList> = api.get_as("/api/v1/servers").await?;
    Ok(list
        .body
        .servers
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect())
}
