//! Secrets at rest: XChaCha20-Poly1305 under a 32-byte master key.
//!
//! Sealed layout: `b'R' | key_id (1 byte) | nonce (24 bytes) | ciphertext+tag`.
//! The key id lets a later rotation tell which key sealed a value. The master
//! key comes from `REMORA_MASTER_KEY` (64 hex chars or base64 of 32 bytes) or
//! from `master.key` in the data dir, created 0600 on first start.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use std::path::Path;

const MAGIC: u8 = b'R';

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("master key must be 32 bytes as 64 hex characters or base64")]
    BadKey,
    #[error("cannot read or create the master key file {path}: {source}")]
    KeyFile { path: String, source: std::io::Error },
    #[error("sealed secret is malformed or was sealed with another master key")]
    Open,
}

#[derive(Clone)]
pub struct Vault {
    key_id: u8,
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

pub fn parse_key(text: &str) -> Result<[u8; 32], VaultError> {
    let t = text.trim();
    let bytes = if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(t).map_err(|_| VaultError::BadKey)?
    } else {
        base64::engine::general_purpose::STANDARD.decode(t).map_err(|_| VaultError::BadKey)?
    };
    bytes.try_into().map_err(|_| VaultError::BadKey)
}

impl Vault {
    pub fn new(key: [u8; 32]) -> Vault {
        Vault { key_id: 1, cipher: XChaCha20Poly1305::new(&key.into()) }
    }

    /// The key from `REMORA_MASTER_KEY` text if given, else `master.key` in
    /// `data_dir` (generated with mode 0600 when missing).
    pub fn load(env_key: Option<&str>, data_dir: &Path) -> Result<Vault, VaultError> {
        if let Some(k) = env_key.filter(|k| !k.trim().is_empty()) {
            return Ok(Vault::new(parse_key(k)?));
        }
        let path = data_dir.join("master.key");
        let err = |source| VaultError::KeyFile { path: path.display().to_string(), source };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Vault::new(parse_key(&text)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(err)?;
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                write_private_file(&path, hex::encode(key).as_bytes()).map_err(err)?;
                Ok(Vault::new(key))
            }
            Err(e) => Err(err(e)),
        }
    }

    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(2 + 24 + ct.len());
        out.push(MAGIC);
        out.push(self.key_id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        if sealed.len() < 26 || sealed[0] != MAGIC || sealed[1] != self.key_id {
            return Err(VaultError::Open);
        }
        self.cipher
            .decrypt(XNonce::from_slice(&sealed[2..26]), &sealed[26..])
            .map_err(|_| VaultError::Open)
    }

    pub fn open_string(&self, sealed: &[u8]) -> Result<String, VaultError> {
        String::from_utf8(self.open(sealed)?).map_err(|_| VaultError::Open)
    }
}

/// Create (or replace) a file readable only by its owner.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(contents)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn seal_open_round_trip_and_tamper() {
        let v = Vault::new([7; 32]);
        let s = v.seal(b"hunter2");
        assert!(!s.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(v.open(&s).unwrap(), b"hunter2");
        let mut bad = s.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(v.open(&bad).is_err());
        assert!(Vault::new([8; 32]).open(&s).is_err());
    }
    #[test]
    fn key_file_is_created_private_and_reused() {
        let d = tempfile::tempdir().unwrap();
        let a = Vault::load(None, d.path()).unwrap();
        let b = Vault::load(None, d.path()).unwrap();
        assert_eq!(b.open(&a.seal(b"x")).unwrap(), b"x");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join("master.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    #[test]
    fn parses_hex_and_rejects_short() {
        assert!(parse_key(&"ab".repeat(32)).is_ok());
        assert!(parse_key("abc").is_err());
    }
}
