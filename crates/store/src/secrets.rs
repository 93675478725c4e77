//! Sealed credentials: a server's own secrets, uploaded PEM key files, decryption and rekeying.

use crate::{Result, Store, StoreError, Vault};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A server's sealed credentials, for the worker and connection tests.
#[derive(Debug, Clone)]
pub struct ServerSecrets {
    pub password_enc: Option<Vec<u8>>,
    pub private_key_enc: Option<Vec<u8>>,
    pub passphrase_enc: Option<Vec<u8>>,
    pub pem_file_enc: Option<Vec<u8>>,
}

/// A server's credentials, decrypted.
#[derive(Clone, Default)]
pub struct PlainSecrets {
    pub password: Option<String>,
    pub private_key: Option<String>,
    pub passphrase: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PemFile {
    pub id: String,
    pub key_type: String,
    pub fingerprint: String,
    pub size: i64,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

fn pem_from_row(r: &AnyRow) -> Result<PemFile> {
    Ok(PemFile {
        id: r.try_get(0)?,
        key_type: r.try_get(1)?,
        fingerprint: r.try_get(2)?,
        size: r.try_get(3)?,
        created_at: r.try_get(4)?,
    })
}

impl Store {
    pub async fn server_secrets(&self, id: &str) -> Result<Option<ServerSecrets>> {
        let row = sqlx::query(
            "SELECT s.password_enc, s.private_key_enc, s.passphrase_enc, p.content_enc
             FROM servers s LEFT JOIN pem_files p ON p.id = s.pem_file_id WHERE s.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            Ok(ServerSecrets {
                password_enc: r.try_get(0)?,
                private_key_enc: r.try_get(1)?,
                passphrase_enc: r.try_get(2)?,
                pem_file_enc: r.try_get(3)?,
            })
        })
        .transpose()
    }

    /// Decrypt a server's credentials (its own key, or its uploaded PEM file).
    pub async fn open_secrets(
        &self,
        server_id: &str,
        vault: &Vault,
    ) -> Result<Option<PlainSecrets>> {
        let Some(sec) = self.server_secrets(server_id).await? else {
            return Ok(None);
        };
        let open = |v: &Option<Vec<u8>>| -> Result<Option<String>> {
            v.as_ref()
                .map(|b| vault.open_string(b))
                .transpose()
                .map_err(|e| {
                    StoreError::Corrupt(format!("cannot decrypt the server's credentials: {e}"))
                })
        };
        let pem_pass = match &sec.pem_file_enc {
            Some(_) => {
                let row = sqlx::query("SELECT p.passphrase_enc FROM servers s JOIN pem_files p ON p.id = s.pem_file_id WHERE s.id = $1")
                    .bind(server_id)
                    .fetch_optional(&self.read)
                    .await?;
                row.and_then(|r| r.try_get::<Option<Vec<u8>>, _>(0).ok().flatten())
            }
            None => None,
        };
        let own_key = open(&sec.private_key_enc)?;
        let (private_key, passphrase) = match own_key {
            Some(k) => (Some(k), open(&sec.passphrase_enc)?),
            None => (
                open(&sec.pem_file_enc)?,
                match open(&sec.passphrase_enc)? {
                    Some(p) => Some(p),
                    None => open(&pem_pass)?,
                },
            ),
        };
        Ok(Some(PlainSecrets {
            password: open(&sec.password_enc)?,
            private_key,
            passphrase,
        }))
    }

    /// Set (sealed) or clear a server's sudo password, the one a `become` job gives sudo.
    pub async fn set_sudo_password(
        &self,
        server_id: &str,
        sealed: Option<Vec<u8>>,
    ) -> Result<bool> {
        let r = sqlx::query("UPDATE servers SET sudo_password_enc = $1 WHERE id = $2")
            .bind(sealed)
            .bind(server_id)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A server's sudo password, decrypted (None: the server has none).
    pub async fn open_sudo_password(
        &self,
        server_id: &str,
        vault: &Vault,
    ) -> Result<Option<String>> {
        let row = sqlx::query("SELECT sudo_password_enc FROM servers WHERE id = $1")
            .bind(server_id)
            .fetch_optional(&self.read)
            .await?;
        let sealed: Option<Vec<u8>> = match row {
            Some(r) => r.try_get(0)?,
            None => None,
        };
        sealed
            .map(|b| vault.open_string(&b))
            .transpose()
            .map_err(|e| {
                StoreError::Corrupt(format!("cannot decrypt the server's sudo password: {e}"))
            })
    }

    pub async fn insert_pem(
        &self,
        key_type: &str,
        fingerprint: &str,
        content_enc: &[u8],
        passphrase_enc: Option<Vec<u8>>,
        size: i64,
    ) -> Result<PemFile> {
        let id = remora_domain::new_id();
        let now = remora_domain::time::now_ms();
        sqlx::query("INSERT INTO pem_files (id, key_type, fingerprint, content_enc, passphrase_enc, size, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&id)
            .bind(key_type)
            .bind(fingerprint)
            .bind(content_enc.to_vec())
            .bind(passphrase_enc)
            .bind(size)
            .bind(now)
            .execute(&self.write)
            .await?;
        Ok(PemFile {
            id,
            key_type: key_type.into(),
            fingerprint: fingerprint.into(),
            size,
            created_at: now,
        })
    }

    pub async fn list_pems(&self) -> Result<Vec<PemFile>> {
        let rows = sqlx::query("SELECT id, key_type, fingerprint, size, created_at FROM pem_files ORDER BY created_at DESC")
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(pem_from_row).collect()
    }

    pub async fn get_pem(&self, id: &str) -> Result<Option<PemFile>> {
        let row = sqlx::query(
            "SELECT id, key_type, fingerprint, size, created_at FROM pem_files WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(pem_from_row).transpose()
    }

    /// Servers that use a PEM file (it cannot be deleted while any does).
    pub async fn pem_users(&self, id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM servers WHERE pem_file_id = $1 ORDER BY name")
            .bind(id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    pub async fn delete_pem(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM pem_files WHERE id = $1")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Re-encrypt every sealed secret (server passwords, keys, passphrases,
    /// uploaded key files) from `old` (which may know previous keys) to
    /// `new`, in one transaction. Returns how many values were rewritten.
    pub async fn rekey(&self, old: &Vault, new: &Vault) -> Result<usize> {
        let mut tx = self.write.begin().await?;
        let mut n = 0;
        for (table, cols) in [
            (
                "servers",
                vec![
                    "password_enc",
                    "private_key_enc",
                    "passphrase_enc",
                    "sudo_password_enc",
                ],
            ),
            ("pem_files", vec!["content_enc", "passphrase_enc"]),
        ] {
            for col in cols.iter().collect::<std::collections::BTreeSet<_>>() {
                let rows = sqlx::query(&format!(
                    "SELECT id, {col} FROM {table} WHERE {col} IS NOT NULL"
                ))
                .fetch_all(&mut *tx)
                .await?;
                for r in rows {
                    let id: String = r.try_get(0)?;
                    let sealed: Vec<u8> = r.try_get(1)?;
                    let plain = old
                        .open(&sealed)
                        .map_err(|e| StoreError::Corrupt(format!("{table}.{col} of {id}: {e}")))?;
                    sqlx::query(&format!("UPDATE {table} SET {col} = $1 WHERE id = $2"))
                        .bind(new.seal(&plain))
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                    n += 1;
                }
            }
        }
        tx.commit().await?;
        Ok(n)
    }
}
