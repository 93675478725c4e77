//! Servers: the SSH targets jobs run on, their settings and pinned host keys.

use crate::credentials::NewCredential;
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
    /// A credential to use (its id). Without one, inline secrets above go to the
    /// server's private credential, and a bare `pem_file_id` shares that PEM
    /// file's credential.
    pub credential_id: Option<String>,
    pub sudo_password_enc: Option<Vec<u8>>,
}

/// `last_status` values that count as reachable (as the dashboard reads them).
pub const REACHABLE_STATUSES: [&str; 5] = ["ok", "online", "reachable", "up", "healthy"];

/// A server status filter of the servers list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Last check succeeded.
    Reachable,
    /// Last check failed.
    Unreachable,
    /// Never checked.
    Unchecked,
    /// Not active (jobs are not sent to it).
    Inactive,
}

impl ServerState {
    pub fn parse(s: &str) -> Option<ServerState> {
        Some(match s {
            "reachable" => ServerState::Reachable,
            "unreachable" => ServerState::Unreachable,
            "unchecked" => ServerState::Unchecked,
            "inactive" => ServerState::Inactive,
            _ => return None,
        })
    }
}

/// Which servers of the list, by name.
#[derive(Debug, Clone, Default)]
pub struct ServerQuery {
    /// Case-insensitive substring of name, `user@hostname:port`, tags or id.
    pub q: Option<String>,
    /// Servers with exactly this tag.
    pub tag: Option<String>,
    pub status: Option<ServerState>,
    pub offset: i64,
    /// At most this many (None: all of them).
    pub limit: Option<i64>,
}

/// A page of the servers list.
#[derive(Debug, Clone, Default)]
pub struct ServerPage {
    pub servers: Vec<Server>,
    /// Servers matching, before offset/limit.
    pub total: i64,
    /// Of those, the active ones.
    pub active: i64,
}

const SERVER_COLS: &str = "s.id, s.name, s.hostname, s.port, s.username, s.auth_type, c.password_enc IS NOT NULL AS has_pw, c.private_key_enc IS NOT NULL AND (s.pem_file_id IS NULL OR c.id <> s.pem_file_id) AS has_key, c.sudo_password_enc IS NOT NULL AS has_sudo_pw, s.pem_file_id, s.is_active, s.tags, s.max_concurrency, s.host_key_fingerprint, s.last_status, s.last_checked_at, s.created_at, s.updated_at, s.jump_server_id, s.credential_id, s.host_key_first_seen_at, s.host_key_presented";

/// Servers with their credential (for the `has_*` flags).
const SERVER_FROM: &str = "servers s LEFT JOIN credentials c ON c.id = s.credential_id";

pub(crate) fn bool_col(r: &AnyRow, col: &str) -> Result<bool> {
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
        credential_id: r.try_get("credential_id")?,
        host_key_first_seen_at: r.try_get("host_key_first_seen_at")?,
        host_key_presented: r.try_get("host_key_presented")?,
    })
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Bind a server's settable fields as `$1`…`$9` (name, hostname, port,
/// username, auth_type, pem_file_id, is_active, tags, max_concurrency), for
/// insert and update (secrets live in its credential).
/// Without an auth type, a password means password auth, else key auth.
pub(crate) fn bind_settable<'q>(q: Query<'q>, s: &NewServer) -> Query<'q> {
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
        .bind(s.pem_file_id.clone())
        .bind(s.is_active as i64)
        .bind(serde_json::to_string(&s.tags).unwrap_or_else(|_| "[]".into()))
        .bind(s.max_concurrency)
}

pub(crate) fn has_inline(s: &NewServer) -> bool {
    s.password_enc.is_some()
        || s.private_key_enc.is_some()
        || s.sudo_password_enc.is_some()
        || (s.pem_file_id.is_some() && s.passphrase_enc.is_some())
}

/// The server's private credential made of its inline secrets (a PEM file's
/// key is copied in when the server has no key of its own).
pub(crate) async fn private_credential(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    server_id: &str,
    s: &NewServer,
) -> Result<NewCredential> {
    let auth = s.auth_type.unwrap_or(if s.password_enc.is_some() {
        AuthType::Password
    } else {
        AuthType::Key
    });
    let mut c = NewCredential {
        name: format!("server:{}", s.name),
        kind: auth.as_str().into(),
        password_enc: s.password_enc.clone(),
        private_key_enc: s.private_key_enc.clone(),
        passphrase_enc: s.passphrase_enc.clone(),
        sudo_password_enc: s.sudo_password_enc.clone(),
        owner_server_id: Some(server_id.to_string()),
        ..Default::default()
    };
    if let (None, Some(pem)) = (&c.private_key_enc, &s.pem_file_id) {
        let row = sqlx::query("SELECT private_key_enc, passphrase_enc, key_type, fingerprint, certificate FROM credentials WHERE id = $1")
            .bind(pem.clone())
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("pem file {pem} has no credential")))?;
        c.private_key_enc = row.try_get(0)?;
        if c.passphrase_enc.is_none() {
            c.passphrase_enc = row.try_get(1)?;
        }
        c.key_type = row.try_get(2)?;
        c.fingerprint = row.try_get(3)?;
        c.certificate = row.try_get(4)?;
    }
    Ok(c)
}

impl Store {
    /// Insert a server. Its credential: `credential_id` if given, else a
    /// private credential of its inline secrets, else its PEM file's.
    pub async fn insert_server(&self, s: &NewServer) -> Result<Server> {
        let id = remora_domain::new_id();
        let now = remora_domain::time::now_ms();
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        let (cred, private) = if let Some(c) = &s.credential_id {
            (Some(c.clone()), None)
        } else if has_inline(s) {
            let c = private_credential(&mut tx, &id, s).await?;
            (Some(id.clone()), Some(c))
        } else {
            (s.pem_file_id.clone(), None)
        };
        bind_settable(
            sqlx::query(
                "INSERT INTO servers (name, hostname, port, username, auth_type, pem_file_id, is_active, tags, max_concurrency, id, created_at, updated_at, credential_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)",
            ),
            s,
        )
        .bind(&id)
        .bind(now)
        .bind(cred)
        .execute(&mut *tx)
        .await
        .map_err(map_unique)?;
        // After the server, so a taken name is reported as the server's.
        if let Some(c) = private {
            crate::credentials::insert_on(&mut *tx, &id, &c).await?;
        }
        tx.commit().await?;
        self.get_server(&id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("inserted server vanished".into()))
    }

    /// Replace every settable field of a server (the caller merges partial
    /// updates, keeping sealed secrets it does not change). The credential
    /// follows the rules of [`Store::insert_server`]; the server's private
    /// credential is rotated in place, or deleted when no longer used.
    pub async fn update_server(&self, id: &str, s: &NewServer) -> Result<bool> {
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        let private: Option<String> = sqlx::query(
            "SELECT c.id FROM servers s JOIN credentials c ON c.id = s.credential_id AND c.owner_server_id = s.id WHERE s.id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
        let (cred, new_private) = if let Some(c) = &s.credential_id {
            (Some(c.clone()), None)
        } else if has_inline(s) {
            let c = private_credential(&mut tx, id, s).await?;
            (Some(id.to_string()), Some(c))
        } else {
            (s.pem_file_id.clone(), None)
        };
        let r = bind_settable(
            sqlx::query(
                "UPDATE servers SET name = $1, hostname = $2, port = $3, username = $4, auth_type = $5,
                     pem_file_id = $6, is_active = $7, tags = $8, max_concurrency = $9, updated_at = $10, credential_id = $11 WHERE id = $12",
            ),
            s,
        )
        .bind(remora_domain::time::now_ms())
        .bind(cred.clone())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map_unique)?;
        match (new_private, &private) {
            (Some(c), Some(p)) => {
                crate::credentials::update_on(&mut *tx, p, &c).await?;
            }
            (Some(c), None) => crate::credentials::insert_on(&mut *tx, id, &c).await?,
            (None, Some(p)) if Some(p) == cred.as_ref() => {
                // Kept as it is; it follows a rename.
                sqlx::query("UPDATE credentials SET name = $1 WHERE id = $2")
                    .bind(format!("server:{}", s.name))
                    .bind(p.clone())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_unique)?;
            }
            (None, _) => {}
        }
        if let Some(p) = private.filter(|p| Some(p) != cred.as_ref()) {
            sqlx::query("DELETE FROM credentials WHERE id = $1")
                .bind(p)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
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
            "SELECT {SERVER_COLS} FROM {SERVER_FROM} WHERE s.jump_server_id = $1 ORDER BY s.name"
        ))
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(server_from_row).collect()
    }

    pub async fn list_servers(&self) -> Result<Vec<Server>> {
        let rows = sqlx::query(&format!(
            "SELECT {SERVER_COLS} FROM {SERVER_FROM} ORDER BY s.name"
        ))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(server_from_row).collect()
    }

    /// One page of servers by name matching `f`, with how many match (and how
    /// many of those are active), filtered and counted in SQL.
    pub async fn list_servers_page(&self, f: &ServerQuery) -> Result<ServerPage> {
        let mut conds: Vec<String> = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            binds.push(crate::jobs::like_pattern(q));
            // What the dashboard's search reads: name, user@host:port, tags, id.
            conds.push(format!(
                "LOWER(s.name || ' ' || s.username || '@' || s.hostname || ':' || CAST(s.port AS TEXT) || ' ' || \
                 REPLACE(REPLACE(REPLACE(REPLACE(s.tags, '[', ''), ']', ''), '\"', ''), ',', ' ') || ' ' || s.id) LIKE ${} ESCAPE '\\'",
                binds.len()
            ));
        }
        if let Some(tag) = f.tag.as_deref().filter(|t| !t.is_empty()) {
            // Tags are stored as a JSON array: the quoted tag is in it exactly when the tag is.
            binds.push(serde_json::to_string(tag).unwrap_or_default());
            let n = binds.len();
            conds.push(match self.backend {
                crate::Backend::Sqlite => format!("instr(s.tags, ${n}) > 0"),
                crate::Backend::Postgres => format!("strpos(s.tags, ${n}) > 0"),
            });
        }
        let ok = REACHABLE_STATUSES
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        match f.status {
            None => {}
            Some(ServerState::Reachable) => conds.push(format!("s.last_status IN ({ok})")),
            Some(ServerState::Unreachable) => conds.push(format!(
                "s.last_status IS NOT NULL AND s.last_status <> '' AND s.last_status NOT IN ({ok})"
            )),
            Some(ServerState::Unchecked) => {
                conds.push("(s.last_status IS NULL OR s.last_status = '')".into())
            }
            Some(ServerState::Inactive) => conds.push("s.is_active = 0".into()),
        }
        let where_sql = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let count_sql = format!(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN s.is_active <> 0 THEN 1 ELSE 0 END), 0) FROM servers s {where_sql}"
        );
        let mut q = sqlx::query(&count_sql);
        for b in &binds {
            q = q.bind(b.clone());
        }
        let row = q.fetch_one(&self.read).await?;
        let total: i64 = row.try_get(0)?;
        let active: i64 = row.try_get(1)?;
        let limit = f.limit.unwrap_or(i64::MAX).max(0);
        if limit == 0 || f.offset >= total {
            return Ok(ServerPage {
                servers: Vec::new(),
                total,
                active,
            });
        }
        let page_sql = format!(
            "SELECT {SERVER_COLS} FROM {SERVER_FROM} {where_sql} ORDER BY s.name LIMIT {} OFFSET {}",
            limit.min(total),
            f.offset.max(0)
        );
        let mut q = sqlx::query(&page_sql);
        for b in &binds {
            q = q.bind(b.clone());
        }
        let rows = q.fetch_all(&self.read).await?;
        Ok(ServerPage {
            servers: rows.iter().map(server_from_row).collect::<Result<_>>()?,
            total,
            active,
        })
    }

    /// How many servers there are and every tag any of them has, sorted.
    pub async fn server_tags(&self) -> Result<(i64, Vec<String>)> {
        let rows = sqlx::query("SELECT tags FROM servers")
            .fetch_all(&self.read)
            .await?;
        let mut tags = std::collections::BTreeSet::new();
        for r in &rows {
            let t: String = r.try_get(0)?;
            let t: Vec<String> =
                serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            tags.extend(t);
        }
        Ok((rows.len() as i64, tags.into_iter().collect()))
    }

    pub async fn get_server(&self, id: &str) -> Result<Option<Server>> {
        let row = sqlx::query(&format!(
            "SELECT {SERVER_COLS} FROM {SERVER_FROM} WHERE s.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(server_from_row).transpose()
    }

    pub async fn get_server_by_name(&self, name: &str) -> Result<Option<Server>> {
        let row = sqlx::query(&format!(
            "SELECT {SERVER_COLS} FROM {SERVER_FROM} WHERE s.name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(server_from_row).transpose()
    }

    /// Trust on first use: pin `fingerprint` if the server has none yet.
    /// Returns the fingerprint now pinned.
    pub async fn pin_host_key(&self, id: &str, fingerprint: &str) -> Result<Option<String>> {
        sqlx::query("UPDATE servers SET host_key_fingerprint = $1, host_key_first_seen_at = $2 WHERE id = $3 AND host_key_fingerprint IS NULL")
            .bind(fingerprint)
            .bind(remora_domain::time::now_ms())
            .bind(id)
            .execute(&self.write)
            .await?;
        let row = sqlx::query("SELECT host_key_fingerprint FROM servers WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.and_then(|r| r.try_get::<Option<String>, _>(0).ok().flatten()))
    }

    /// Replace the pinned key (the audited "accept new host key" action): the key counts as first
    /// seen now and a pending mismatch is resolved.
    pub async fn set_host_key(&self, id: &str, fingerprint: Option<&str>) -> Result<bool> {
        let now = remora_domain::time::now_ms();
        let r = sqlx::query(
            "UPDATE servers SET host_key_fingerprint = $1, host_key_first_seen_at = $2, host_key_presented = NULL, updated_at = $3 WHERE id = $4",
        )
        .bind(fingerprint.map(str::to_string))
        .bind(fingerprint.map(|_| now))
        .bind(now)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Record the key a host presented that did not match its pin (`None` clears it), for the
    /// dashboard's review. The pin itself is not touched.
    pub async fn set_host_key_presented(&self, id: &str, presented: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE servers SET host_key_presented = $1 WHERE id = $2")
            .bind(presented.map(str::to_string))
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
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

    /// Delete a server and its private credential (shared ones stay).
    pub async fn delete_server(&self, id: &str) -> Result<bool> {
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        let r = sqlx::query("DELETE FROM servers WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM credentials WHERE owner_server_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }
}
