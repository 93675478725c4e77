//! Servers (SSH targets) as the API returns them: never with a secret.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    Password,
    Key,
}

impl AuthType {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::Password => "password",
            AuthType::Key => "key",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "password" => Some(AuthType::Password),
            "key" => Some(AuthType::Key),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Server {
    pub id: String,
    pub name: String,
    pub hostname: String,
    pub port: i64,
    pub user: String,
    pub auth_type: AuthType,
    pub is_active: bool,
    pub tags: Vec<String>,
    pub max_concurrency: i64,
    pub host_key_fingerprint: Option<String>,
    pub has_password: bool,
    pub has_private_key: bool,
    pub pem_file_id: Option<String>,
    pub last_status: Option<String>,
    #[serde(with = "crate::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_checked_at: Option<i64>,
    #[serde(with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
    /// The server this one is reached through (its jump host), if any.
    #[serde(default)]
    pub jump_server_id: Option<String>,
    /// The credential (see `/credentials`) the server logs in with.
    #[serde(default)]
    pub credential_id: Option<String>,
}
