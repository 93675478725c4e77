//! Secrets at rest: XChaCha20-Poly1305 under a 32-byte master key.
//!
//! Sealed layout: `b'R' | 2 (format) | key id (4 bytes) | nonce (24 bytes) |
//! ciphertext+tag`. The key id (the first 4 bytes of SHA-256 of the key)
//! tells which key sealed a value, so keys can be rotated: `remora rekey`
//! re-encrypts every secret under a new key, and previous keys
//! (`REMORA_MASTER_KEY_PREVIOUS`) still open values during a rollout. The
//! master key comes from `REMORA_MASTER_KEY` (64 hex chars or base64 of 32
//! bytes) or from `master.key` in the data dir, created 0600 on first start.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use std::path::Path;

const MAGIC: u8 = b'R';
const FORMAT: u8 = 2;
const HEADER: usize = 2 + 4 + 24;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("master key must be 32 bytes as 64 hex characters or base64")]
    BadKey,
    #[error("cannot read or create the master key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("sealed secret is malformed or was sealed with another master key")]
    Open,
}

#[derive(Clone)]
struct Key {
    id: [u8; 4],
    cipher: XChaCha20Poly1305,
}

impl Key {
    fn new(key: [u8; 32]) -> Key {
        use sha2::Digest;
        let d = sha2::Sha256::digest(key);
        Key {
            id: [d[0], d[1], d[2], d[3]],
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }
}

#[derive(Clone)]
pub struct Vault {
    current: Key,
    /// Older keys that may still have sealed values (read only).
    previous: Vec<Key>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("key_id", &hex::encode(self.current.id))
            .field("previous", &self.previous.len())
            .finish_non_exhaustive()
    }
}

pub fn parse_key(text: &str) -> Result<[u8; 32], VaultError> {
    let t = text.trim();
    let bytes = if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(t).map_err(|_| VaultError::BadKey)?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(t)
            .map_err(|_| VaultError::BadKey)?
    };
    bytes.try_into().map_err(|_| VaultError::BadKey)
}

impl Vault {
    pub fn new(key: [u8; 32]) -> Vault {
        Vault {
            current: Key::new(key),
            previous: Vec::new(),
        }
    }

    /// Also open values sealed under these older keys.
    pub fn with_previous(mut self, keys: &[[u8; 32]]) -> Vault {
        self.previous.extend(keys.iter().map(|k| Key::new(*k)));
        self
    }

    /// Hex id of the current key.
    pub fn key_id(&self) -> String {
        hex::encode(self.current.id)
    }

    /// The key id a sealed value names.
    pub fn sealed_key_id(sealed: &[u8]) -> Option<String> {
        (sealed.len() >= HEADER && sealed[0] == MAGIC && sealed[1] == FORMAT)
            .then(|| hex::encode(&sealed[2..6]))
    }

    /// The key from `REMORA_MASTER_KEY` text if given, else `master.key` in
    /// `data_dir` (generated with mode 0600 when missing).
    pub fn load(env_key: Option<&str>, data_dir: &Path) -> Result<Vault, VaultError> {
        if let Some(k) = env_key.filter(|k| !k.trim().is_empty()) {
            return Ok(Vault::new(parse_key(k)?));
        }
        let path = data_dir.join("master.key");
        let err = |source| VaultError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Vault::new(parse_key(&text)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(err)?;
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                if create_private_file_once(&path, hex::encode(key).as_bytes()).map_err(err)? {
                    Ok(Vault::new(key))
                } else {
                    // Another process created it first: use its key.
                    let text = std::fs::read_to_string(&path).map_err(err)?;
                    Ok(Vault::new(parse_key(&text)?))
                }
            }
            Err(e) => Err(err(e)),
        }
    }

    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .current
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(HEADER + ct.len());
        out.push(MAGIC);
        out.push(FORMAT);
        out.extend_from_slice(&self.current.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        if sealed.len() < HEADER || sealed[0] != MAGIC || sealed[1] != FORMAT {
            return Err(VaultError::Open);
        }
        let key = std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find(|k| k.id == sealed[2..6])
            .ok_or(VaultError::Open)?;
        key.cipher
            .decrypt(XNonce::from_slice(&sealed[6..HEADER]), &sealed[HEADER..])
            .map_err(|_| VaultError::Open)
    }

    pub fn open_string(&self, sealed: &[u8]) -> Result<String, VaultError> {
        String::from_utf8(self.open(sealed)?).map_err(|_| VaultError::Open)
    }
}

/// Create (or replace) a file readable only by its owner.
/// Create `path` (0600) with `contents` only if it does not exist, atomically:
/// the complete contents go to a fresh temporary file (`create_new`), synced,
/// then hard-linked into place, which fails if `path` appeared meanwhile. So
/// a reader never sees a partial file and two processes starting together
/// agree on one. Returns false when `path` already existed.
pub fn create_private_file_once(path: &Path, contents: &[u8]) -> std::io::Result<bool> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut tag = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut tag);
    let tmp = path.with_extension(format!("tmp.{}.{}", std::process::id(), hex::encode(tag)));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let written = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

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
    fn processes_starting_together_agree_on_one_master_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
            let vaults: Vec<Vault> = (0..8)
                .map(|_| {
                    let d = dir.path().to_path_buf();
                    let b = barrier.clone();
                    std::thread::spawn(move || {
                        b.wait();
                        Vault::load(None, &d).unwrap()
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect();
            let on_disk = Vault::load(None, dir.path()).unwrap();
            for v in &vaults {
                assert_eq!(on_disk.open(&v.seal(b"x")).unwrap(), b"x");
            }
            // No temporary files left behind.
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        }
    }
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
        let mode = std::fs::metadata(d.path().join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    #[test]
    fn previous_keys_open_old_values_and_ids_differ() {
        let old = Vault::new([1; 32]);
        let sealed = old.seal(b"pw");
        let new = Vault::new([2; 32]);
        assert!(new.open(&sealed).is_err());
        let rolling = Vault::new([2; 32]).with_previous(&[[1; 32]]);
        assert_eq!(rolling.open(&sealed).unwrap(), b"pw");
        assert_eq!(Vault::sealed_key_id(&sealed).unwrap(), old.key_id());
        assert_ne!(old.key_id(), new.key_id());
        assert_eq!(
            Vault::sealed_key_id(&rolling.seal(b"x")).unwrap(),
            new.key_id()
        );
    }

    #[test]
    fn parses_hex_and_rejects_short() {
        assert!(parse_key(&"ab".repeat(32)).is_ok());
        assert!(parse_key("abc").is_err());
    }
}
