//! Inventory import: every server insert, update, jump host and host-key pin of one import in a
//! single transaction, so a failure applies nothing.

use crate::servers::{bind_settable, has_inline, private_credential};
use crate::{map_unique, NewServer, Result, Store};

/// One change of an import, already validated and resolved by the API.
#[derive(Debug, Clone)]
pub enum ImportOp {
    /// A new server with the id the API chose (so other rows can name it as their jump host).
    Create {
        id: String,
        server: NewServer,
        jump_server_id: Option<String>,
        host_key: Option<String>,
    },
    /// Change the fields an inventory describes of an existing server; its credentials and
    /// everything else stay as they are.
    Update {
        id: String,
        hostname: String,
        port: i64,
        user: String,
        tags: Vec<String>,
        max_concurrency: i64,
        is_active: bool,
        jump_server_id: Option<String>,
    },
    /// Pin a host key read from a `known_hosts` file (first seen now; a pending mismatch is resolved).
    PinHostKey { id: String, fingerprint: String },
}

impl Store {
    /// Apply `ops` in one transaction: all of them or, on the first error, none.
    pub async fn apply_import(&self, ops: &[ImportOp]) -> Result<()> {
        let now = remora_domain::time::now_ms();
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        for op in ops {
            match op {
                ImportOp::Create {
                    id,
                    server,
                    jump_server_id,
                    host_key,
                } => {
                    // The credential follows the rules of `Store::insert_server`: a named one,
                    // else a private one of the inline secrets, else the PEM file's.
                    let (cred, private) = if let Some(c) = &server.credential_id {
                        (Some(c.clone()), None)
                    } else if has_inline(server) {
                        let c = private_credential(&mut tx, id, server).await?;
                        (Some(id.clone()), Some(c))
                    } else {
                        (server.pem_file_id.clone(), None)
                    };
                    bind_settable(
                        sqlx::query(
                            "INSERT INTO servers (name, hostname, port, username, auth_type, pem_file_id, is_active, tags, max_concurrency, id, created_at, updated_at, credential_id, jump_server_id, host_key_fingerprint, host_key_first_seen_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14, $15)",
                        ),
                        server,
                    )
                    .bind(id.clone())
                    .bind(now)
                    .bind(cred)
                    .bind(jump_server_id.clone())
                    .bind(host_key.clone())
                    .bind(host_key.as_ref().map(|_| now))
                    .execute(&mut *tx)
                    .await
                    .map_err(map_unique)?;
                    if let Some(c) = private {
                        crate::credentials::insert_on(&mut *tx, id, &c).await?;
                    }
                }
                ImportOp::Update {
                    id,
                    hostname,
                    port,
                    user,
                    tags,
                    max_concurrency,
                    is_active,
                    jump_server_id,
                } => {
                    sqlx::query(
                        "UPDATE servers SET hostname = $1, port = $2, username = $3, tags = $4, max_concurrency = $5, is_active = $6, jump_server_id = $7, updated_at = $8 WHERE id = $9",
                    )
                    .bind(hostname.clone())
                    .bind(*port)
                    .bind(user.clone())
                    .bind(serde_json::to_string(tags).unwrap_or_else(|_| "[]".into()))
                    .bind(*max_concurrency)
                    .bind(*is_active as i64)
                    .bind(jump_server_id.clone())
                    .bind(now)
                    .bind(id.clone())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_unique)?;
                }
                ImportOp::PinHostKey { id, fingerprint } => {
                    sqlx::query(
                        "UPDATE servers SET host_key_fingerprint = $1, host_key_first_seen_at = $2, host_key_presented = NULL, updated_at = $2 WHERE id = $3",
                    )
                    .bind(fingerprint.clone())
                    .bind(now)
                    .bind(id.clone())
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
