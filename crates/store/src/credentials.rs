//! Credentials as objects: sealed keys and passwords many servers share, and trusted SSH CAs.

use crate::{map_unique, Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A credential's settable fields, secrets already sealed (the caller merges a
/// partial rotation with the sealed values it keeps).
#[derive(Debug, Clone, Default)]
pub struct NewCredential {
    pub name: String,
    /// `key` or `password`.
    pub kind: String,
    pub password_enc: Option<Vec<u8>>,
    pub private_key_enc: Option<Vec<u8>>,
    pub passphrase_enc: Option<Vec<u8>>,
    /// An OpenSSH user certificate for the key (public, not sealed).
    pub certificate: Option<String>,
    pub sudo_password_enc: Option<Vec<u8>>,
    pub key_type: Option<String>,
    pub fingerprint: Option<String>,
    /// Set for a server's private credential (made from inline secrets).
    pub owner_server_id: Option<String>,
}

/// A credential as stored, without its secrets.
#[derive(Debug, Clone)]
pub struct Credential {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub has_password: bool,
    pub has_private_key: bool,
    pub has_passphrase: bool,
    pub has_sudo_password: bool,
    pub certificate: Option<String>,
    pub key_type: Option<String>,
    pub fingerprint: Option<String>,
    pub owner_server_id: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A credential's sealed secrets.
#[derive(Debug, Clone, Default)]
pub struct SealedCredential {
    pub password_enc: Option<Vec<u8>>,
    pub private_key_enc: Option<Vec<u8>>,
    pub passphrase_enc: Option<Vec<u8>>,
    pub sudo_password_enc: Option<Vec<u8>>,
    pub certificate: Option<String>,
}

/// A trusted CA as stored.
#[derive(Debug, Clone)]
pub struct TrustedCaRow {
    pub id: String,
    pub name: String,
    pub public_key: String,
    pub key_type: String,
    pub fingerprint: String,
    pub patterns: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const CRED_COLS: &str = "id, name, kind, password_enc IS NOT NULL AS has_pw, private_key_enc IS NOT NULL AS has_key, passphrase_enc IS NOT NULL AS has_pass, sudo_password_enc IS NOT NULL AS has_sudo, certificate, key_type, fingerprint, owner_server_id, version, created_at, updated_at";

fn credential_from_row(r: &AnyRow) -> Result<Credential> {
    let b = |c: &str| crate::servers::bool_col(r, c);
    Ok(Credential {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        has_password: b("has_pw")?,
        has_private_key: b("has_key")?,
        has_passphrase: b("has_pass")?,
        has_sudo_password: b("has_sudo")?,
        certificate: r.try_get("certificate")?,
        key_type: r.try_get("key_type")?,
        fingerprint: r.try_get("fingerprint")?,
        owner_server_id: r.try_get("owner_server_id")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn ca_from_row(r: &AnyRow) -> Result<TrustedCaRow> {
    let patterns: String = r.try_get("patterns")?;
    Ok(TrustedCaRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        public_key: r.try_get("public_key")?,
        key_type: r.try_get("key_type")?,
        fingerprint: r.try_get("fingerprint")?,
        patterns: serde_json::from_str(&patterns)
            .map_err(|e| StoreError::Corrupt(format!("trusted CA patterns: {e}")))?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Insert a credential on `ex` (a pool or a transaction).
pub(crate) async fn insert_on<'e, E>(ex: E, id: &str, c: &NewCredential) -> Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let now = remora_domain::time::now_ms();
    sqlx::query(
        "INSERT INTO credentials (id, name, kind, password_enc, private_key_enc, passphrase_enc, certificate, sudo_password_enc, key_type, fingerprint, owner_server_id, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $12)",
    )
    .bind(id.to_string())
    .bind(c.name.clone())
    .bind(c.kind.clone())
    .bind(c.password_enc.clone())
    .bind(c.private_key_enc.clone())
    .bind(c.passphrase_enc.clone())
    .bind(c.certificate.clone())
    .bind(c.sudo_password_enc.clone())
    .bind(c.key_type.clone())
    .bind(c.fingerprint.clone())
    .bind(c.owner_server_id.clone())
    .bind(now)
    .execute(ex)
    .await
    .map_err(map_unique)?;
    Ok(())
}

/// Replace every field of a credential and bump its version (a rotation).
pub(crate) async fn update_on<'e, E>(ex: E, id: &str, c: &NewCredential) -> Result<bool>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let r = sqlx::query(
        "UPDATE credentials SET name = $1, kind = $2, password_enc = $3, private_key_enc = $4, passphrase_enc = $5, certificate = $6,
             sudo_password_enc = $7, key_type = $8, fingerprint = $9, version = version + 1, updated_at = $10 WHERE id = $11",
    )
    .bind(c.name.clone())
    .bind(c.kind.clone())
    .bind(c.password_enc.clone())
    .bind(c.private_key_enc.clone())
    .bind(c.passphrase_enc.clone())
    .bind(c.certificate.clone())
    .bind(c.sudo_password_enc.clone())
    .bind(c.key_type.clone())
    .bind(c.fingerprint.clone())
    .bind(remora_domain::time::now_ms())
    .bind(id.to_string())
    .execute(ex)
    .await
    .map_err(map_unique)?;
    Ok(r.rows_affected() == 1)
}

impl Store {
    pub async fn insert_credential(&self, c: &NewCredential) -> Result<Credential> {
        let id = remora_domain::new_id();
        insert_on(&self.write, &id, c).await?;
        self.get_credential(&id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("inserted credential vanished".into()))
    }

    /// Rotate or rename: replace every field (the caller merges what it keeps).
    pub async fn update_credential(&self, id: &str, c: &NewCredential) -> Result<bool> {
        update_on(&self.write, id, c).await
    }

    pub async fn list_credentials(&self) -> Result<Vec<Credential>> {
        let rows = sqlx::query(&format!(
            "SELECT {CRED_COLS} FROM credentials ORDER BY name"
        ))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(credential_from_row).collect()
    }

    pub async fn get_credential(&self, id: &str) -> Result<Option<Credential>> {
        let row = sqlx::query(&format!(
            "SELECT {CRED_COLS} FROM credentials WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(credential_from_row).transpose()
    }

    pub async fn get_credential_by_name(&self, name: &str) -> Result<Option<Credential>> {
        let row = sqlx::query(&format!(
            "SELECT {CRED_COLS} FROM credentials WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(credential_from_row).transpose()
    }

    /// A credential's sealed secrets (for merging a partial rotation).
    pub async fn credential_sealed(&self, id: &str) -> Result<Option<SealedCredential>> {
        let row = sqlx::query("SELECT password_enc, private_key_enc, passphrase_enc, sudo_password_enc, certificate FROM credentials WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| {
            Ok(SealedCredential {
                password_enc: r.try_get(0)?,
                private_key_enc: r.try_get(1)?,
                passphrase_enc: r.try_get(2)?,
                sudo_password_enc: r.try_get(3)?,
                certificate: r.try_get(4)?,
            })
        })
        .transpose()
    }

    /// The servers (id, name) that use a credential, by name.
    pub async fn credential_users(&self, id: &str) -> Result<Vec<(String, String)>> {
        let rows =
            sqlx::query("SELECT id, name FROM servers WHERE credential_id = $1 ORDER BY name")
                .bind(id)
                .fetch_all(&self.read)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Delete a credential no server uses (the caller checks [`Store::credential_users`]);
    /// false if it does not exist or is in use.
    pub async fn delete_credential(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM credentials WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM servers WHERE credential_id = $1)")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn insert_trusted_ca(
        &self,
        name: &str,
        public_key: &str,
        key_type: &str,
        fingerprint: &str,
        patterns: &[String],
    ) -> Result<TrustedCaRow> {
        let id = remora_domain::new_id();
        let now = remora_domain::time::now_ms();
        sqlx::query("INSERT INTO trusted_cas (id, name, public_key, key_type, fingerprint, patterns, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)")
            .bind(&id)
            .bind(name)
            .bind(public_key)
            .bind(key_type)
            .bind(fingerprint)
            .bind(serde_json::to_string(patterns).unwrap_or_else(|_| "[]".into()))
            .bind(now)
            .execute(&self.write)
            .await
            .map_err(map_unique)?;
        self.get_trusted_ca(&id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("inserted CA vanished".into()))
    }

    /// Change a CA's name or patterns (its key is its identity: add another CA to change it).
    pub async fn update_trusted_ca(
        &self,
        id: &str,
        name: &str,
        patterns: &[String],
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE trusted_cas SET name = $1, patterns = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(name)
        .bind(serde_json::to_string(patterns).unwrap_or_else(|_| "[]".into()))
        .bind(remora_domain::time::now_ms())
        .bind(id)
        .execute(&self.write)
        .await
        .map_err(map_unique)?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn list_trusted_cas(&self) -> Result<Vec<TrustedCaRow>> {
        let rows = sqlx::query("SELECT id, name, public_key, key_type, fingerprint, patterns, created_at, updated_at FROM trusted_cas ORDER BY name")
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(ca_from_row).collect()
    }

    pub async fn get_trusted_ca(&self, id: &str) -> Result<Option<TrustedCaRow>> {
        let row = sqlx::query("SELECT id, name, public_key, key_type, fingerprint, patterns, created_at, updated_at FROM trusted_cas WHERE id = $1 OR name = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(ca_from_row).transpose()
    }

    pub async fn delete_trusted_ca(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM trusted_cas WHERE id = $1")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}

impl Store {
    /// Sealed values still in the pre-0016 places (servers' own columns, PEM
    /// file contents): 0 once migration 0016 ran. For tests and `doctor`-style checks.
    pub async fn count_inline_ciphertexts(&self) -> Result<i64> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM servers WHERE password_enc IS NOT NULL OR private_key_enc IS NOT NULL OR passphrase_enc IS NOT NULL OR sudo_password_enc IS NOT NULL)
                  + (SELECT COUNT(*) FROM pem_files WHERE length(content_enc) > 0 OR passphrase_enc IS NOT NULL)",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }
}
