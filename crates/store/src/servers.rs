//! Servers: the SSH targets jobs run on, their settings and pinned host keys.

use crate::{map_unique, Result, Store, StoreError};
use remora_domain::{AuthType, Server};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Fields the API sets when creating a server (secrets already sealed).
#[derive(Debug, Clone, Default)]
pub struct NewServer {
    pub name: String,
    pub hostname: String,
    pub port: i64,
    pub user: String,
    pub auth_type: Option<AuthType>,
    pub password_enc: Option<Vec<u8>>,
    pub private_key_enc: Option<Vec<u8>>,
    pub passphrase_enc: Option<Vec<u8>>,
    pub pem_file_id: Option<String>,
    pub is_active: bool,
    pub tags: Vec<String>,
    pub max_concurrency: i64,
}

const SERVER_COLS: &str = "id, name, hostname, port, username, auth_type, password_enc IS NOT NULL AS has_pw, private_key_enc IS NOT NULL AS has_key, sudo_password_enc IS NOT NULL AS has_sudo_pw, pem_file_id, is_active, tags, max_concurrency, host_key_fingerprint, last_status, last_checked_at, created_at, updated_at, jump_server_id";

fn bool_col(r: &AnyRow, col: &str) -> Result<bool> {
    // `x IS NOT NULL` is a boolean on PostgreSQL and an integer on SQLite.
    if let Ok(b) = r.try_get::<bool, _>(col) {
        return Ok(b);
    }
    Ok(r.try_get::<i64, _>(col)? != 0)
}

fn server_from_row(r: &AnyRow) -> Result<Server> {
    let auth: String = r.try_get("auth_type")?;
    let tags: String = r.try_get("tags")?;
    Ok(Server {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        hostname: r.try_get("hostname")?,
        port: r.try_get("port")?,
        user: r.try_get("username")?,
        auth_type: AuthType::parse(&auth)
            .ok_or_else(|| StoreError::Corrupt(format!("auth type {auth}")))?,
        is_active: r.try_get::<i64, _>("is_active")? != 0,
        tags: serde_json::from_str(&tags).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        max_concurrency: r.try_get("max_concurrency")?,
        host_key_fingerprint: r.try_get("host_key_fingerprint")?,
        has_password: bool_col(r, "has_pw")?,
        has_private_key: bool_col(r, "has_key")?,
        has_sudo_password: bool_col(r, "has_sudo_pw")?,
        pem_file_id: r.try_get("pem_file_id")?,
        last_status: r.try_get("last_status")?,
        last_checked_at: r.try_get("last_checked_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        jump_server_id: r.try_get("jump_server_id")?,
    })
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Bind a server's settable fields as `$1`…`$12` (name, hostname, port,
/// username, auth_type, password_enc, private_key_enc, passphrase_enc,
/// pem_file_id, is_active, tags, max_concurrency), for insert and update.
/// Without an auth type, a password means password auth, else key auth.
fn bind_settable<'q>(q: Query<'q>, s: &NewServer) -> Query<'q> {
    let auth = s.auth_type.unwrap_or(if s.password_enc.is_some() {
        AuthType::Password
    } else {
        AuthType::Key
    });
    q.bind(s.name.clone())
        .bind(s.hostname.clone())
        .bind(s.port)
        .bind(s.user.clone())
        .bind(auth.as_str())
        .bind(s.password_enc.clone())
        .bind(s.private_key_enc.clone())
        .bind(s.passphrase_enc.clone())
        .bind(s.pem_file_id.clone())
        .bind(s.is_active as i64)
        .bind(serde_json::to_string(&s.tags).unwrap_or_else(|_| "[]".into()))
        .bind(s.max_concurrency)
}

impl Store {
    pub async fn insert_server(&self, s: &NewServer) -> Result<Server> {
        let id = remora_domain::new_id();
        let now = remora_domain::time::now_ms();
        bind_settable(
            sqlx::query(
                "INSERT INTO servers (name, hostname, port, username, auth_type, password_enc, private_key_enc, passphrase_enc, pem_file_id, is_active, tags, max_concurrency, id, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)",
            ),
            s,
        )
        .bind(&id)
        .bind(now)
        .execute(&self.write)
        .await
        .map_err(map_unique)?;
        self.get_server(&id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("inserted server vanished".into()))
    }

    /// Replace every settable field of a server (the caller merges partial
    /// updates, keeping sealed secrets it does not change).
    pub async fn update_server(&self, id: &str, s: &NewServer) -> Result<bool> {
        let r = bind_settable(
            sqlx::query(
                "UPDATE servers SET name = $1, hostname = $2, port = $3, username = $4, auth_type = $5, password_enc = $6, private_key_enc = $7,
                     passphrase_enc = $8, pem_file_id = $9, is_active = $10, tags = $11, max_concurrency = $12, updated_at = $13 WHERE id = $14",
            ),
            s,
        )
        .bind(remora_domain::time::now_ms())
        .bind(id)
        .execute(&self.write)
        .await
        .map_err(map_unique)?;
        Ok(r.rows_affected() == 1)
    }

    /// Set (or clear) the server a server is reached through. The API checks
    /// the id exists and makes no loop before calling this.
    pub async fn set_jump_server(&self, id: &str, jump_server_id: Option<&str>) -> Result<bool> {
        let r =
            sqlx::query("UPDATE servers SET jump_server_id = $1, updated_at = $2 WHERE id = $3")
                .bind(jump_server_id.map(str::to_string))
                .bind(remora_domain::time::now_ms())
                .bind(id)
                .execute(&self.write)
                .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Servers reached directly through `id` (their `jump_server_id` is `id`).
    pub async fn servers_jumping_through(&self, id: &str) -> Result<Vec<Server>> {
        let rows = sqlx::query(&format!(
            "SELECT {SERVER_COLS} FROM servers WHERE jump_server_id = $1 ORDER BY name"
        ))
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(server_from_row).collect()
    }

    pub async fn list_servers(&self) -> Result<Vec<Server>> {
        let rows = sqlx::query(&format!("SELECT {SERVER_COLS} FROM servers ORDER BY name"))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(server_from_row).collect()
    }

    pub async fn get_server(&self, id: &str) -> Result<Option<Server>> {
        let row = sqlx::query(&format!("SELECT {SERVER_COLS} FROM servers WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(server_from_row).transpose()
    }

    pub async fn get_server_by_name(&self, name: &str) -> Result<Option<Server>> {
        let row = sqlx::query(&format!(
            "SELECT {SERVER_COLS} FROM servers WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(server_from_row).transpose()
    }

    /// Trust on first use: pin `fingerprint` if the server has none yet.
    /// Returns the fingerprint now pinned.
    pub async fn pin_host_key(&self, id: &str, fingerprint: &str) -> Result<Option<String>> {
        sqlx::query("UPDATE servers SET host_key_fingerprint = $1 WHERE id = $2 AND host_key_fingerprint IS NULL")
            .bind(fingerprint)
            .bind(id)
            .execute(&self.write)
            .await?;
        let row = sqlx::query("SELECT host_key_fingerprint FROM servers WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.and_then(|r| r.try_get::<Option<String>, _>(0).ok().flatten()))
    }

    /// Replace the pinned key (the audited "accept new host key" action).
    pub async fn set_host_key(&self, id: &str, fingerprint: Option<&str>) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE servers SET host_key_fingerprint = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(fingerprint.map(str::to_string))
        .bind(remora_domain::time::now_ms())
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn set_server_status(&self, id: &str, status: &str) -> Result<()> {
        sqlx::query("UPDATE servers SET last_status = $1, last_checked_at = $2 WHERE id = $3")
            .bind(status)
            .bind(remora_domain::time::now_ms())
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn delete_server(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM servers WHERE id = $1")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}
