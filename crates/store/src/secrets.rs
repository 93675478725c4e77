//! Sealed credentials: a server's own secrets, uploaded PEM key files, decryption and rekeying.

use crate::{Result, Store, StoreError, Vault};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A server's sealed credentials (those of its credential), for merging a
/// server update. A key shared through a PEM file is `pem_file_enc`.
#[derive(Debug, Clone, Default)]
pub struct ServerSecrets {
    pub password_enc: Option<Vec<u8>>,
    pub private_key_enc: Option<Vec<u8>>,
    pub passphrase_enc: Option<Vec<u8>>,
    pub pem_file_enc: Option<Vec<u8>>,
    pub sudo_password_enc: Option<Vec<u8>>,
    pub certificate: Option<String>,
    pub credential_id: Option<String>,
    /// The credential is the server's private one (made of inline secrets).
    pub private: bool,
}

/// A server's effective credentials, decrypted: what the worker, connection
/// checks and jump hops use. The one way to read them is
/// [`Store::open_secrets`], which resolves the server's `credential_id`.
#[derive(Clone, Default)]
pub struct PlainSecrets {
    pub password: Option<String>,
    pub private_key: Option<String>,
    pub passphrase: Option<String>,
    /// An OpenSSH user certificate for `private_key` (public).
    pub certificate: Option<String>,
    /// The password sudo asks for (`become`), if the credential has one.
    pub sudo_password: Option<String>,
}

impl std::fmt::Debug for PlainSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret, even in debug output.
        f.debug_struct("PlainSecrets")
            .field("password", &self.password.is_some())
            .field("private_key", &self.private_key.is_some())
            .field("passphrase", &self.passphrase.is_some())
            .field("certificate", &self.certificate.is_some())
            .field("sudo_password", &self.sudo_password.is_some())
            .finish()
    }
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
    /// A server's sealed credentials, through its `credential_id`.
    pub async fn server_secrets(&self, id: &str) -> Result<Option<ServerSecrets>> {
        let row = sqlx::query(
            "SELECT c.password_enc, c.private_key_enc, c.passphrase_enc, c.sudo_password_enc, c.certificate, s.credential_id,
                    c.owner_server_id, s.pem_file_id
             FROM servers s LEFT JOIN credentials c ON c.id = s.credential_id WHERE s.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            let owner: Option<String> = r.try_get(6)?;
            let pem: Option<String> = r.try_get(7)?;
            let cred: Option<String> = r.try_get(5)?;
            let key: Option<Vec<u8>> = r.try_get(1)?;
            let via_pem = pem.is_some() && pem == cred;
            Ok(ServerSecrets {
                password_enc: r.try_get(0)?,
                private_key_enc: if via_pem { None } else { key.clone() },
                passphrase_enc: if via_pem { None } else { r.try_get(2)? },
                pem_file_enc: if via_pem { key } else { None },
                sudo_password_enc: r.try_get(3)?,
                certificate: r.try_get(4)?,
                private: owner.as_deref() == Some(id),
                credential_id: cred,
            })
        })
        .transpose()
    }

    /// Decrypt a server's effective credentials: those of the credential its
    /// `credential_id` names (a shared one, a PEM file's, or its private one).
    /// `None` if the server does not exist; a server without a credential has
    /// empty secrets.
    pub async fn open_secrets(
        &self,
        server_id: &str,
        vault: &Vault,
    ) -> Result<Option<PlainSecrets>> {
        let row = sqlx::query(
            "SELECT c.password_enc, c.private_key_enc, c.passphrase_enc, c.sudo_password_enc, c.certificate
             FROM servers s LEFT JOIN credentials c ON c.id = s.credential_id WHERE s.id = $1",
        )
        .bind(server_id)
        .fetch_optional(&self.read)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let open = |i: usize| -> Result<Option<String>> {
            let v: Option<Vec<u8>> = r.try_get(i)?;
            v.as_ref()
                .map(|b| vault.open_string(b))
                .transpose()
                .map_err(|e| {
                    StoreError::Corrupt(format!("cannot decrypt the server's credentials: {e}"))
                })
        };
        Ok(Some(PlainSecrets {
            password: open(0)?,
            private_key: open(1)?,
            passphrase: open(2)?,
            sudo_password: open(3)?,
            certificate: r.try_get(4)?,
        }))
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
        // The key lives in a shared credential with the same id (`pem:ID`);
        // pem_files keeps the upload's metadata.
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        sqlx::query("INSERT INTO pem_files (id, key_type, fingerprint, content_enc, passphrase_enc, size, created_at) VALUES ($1, $2, $3, $4, NULL, $5, $6)")
            .bind(&id)
            .bind(key_type)
            .bind(fingerprint)
            .bind(Vec::<u8>::new())
            .bind(size)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        crate::credentials::insert_on(
            &mut *tx,
            &id,
            &crate::NewCredential {
                name: format!("pem:{id}"),
                kind: "key".into(),
                private_key_enc: Some(content_enc.to_vec()),
                passphrase_enc,
                key_type: Some(key_type.into()),
                fingerprint: Some(fingerprint.into()),
                ..Default::default()
            },
        )
        .await?;
        tx.commit().await?;
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
        let rows = sqlx::query(
            "SELECT name FROM servers WHERE pem_file_id = $1 OR credential_id = $1 ORDER BY name",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    pub async fn delete_pem(&self, id: &str) -> Result<bool> {
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        let r = sqlx::query("DELETE FROM pem_files WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM credentials WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Re-encrypt every sealed secret (the credentials' passwords, keys,
    /// passphrases and sudo passwords; uploaded key files are credentials) from `old` (which may know previous keys) to
    /// `new`, in one transaction. Returns how many values were rewritten.
    pub async fn rekey(&self, old: &Vault, new: &Vault) -> Result<usize> {
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        let mut n = 0;
        for (table, cols) in [(
            "credentials",
            [
                "password_enc",
                "private_key_enc",
                "passphrase_enc",
                "sudo_password_enc",
            ],
        )] {
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
