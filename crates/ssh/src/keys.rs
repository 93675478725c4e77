//! Private key text → key. russh reads OpenSSH, PKCS#8, SEC1 and PKCS#1
//! keys, but decrypts a legacy encrypted PEM key (`Proc-Type: 4,ENCRYPTED`,
//! what `ssh-keygen -m PEM -N pass` writes) only as RSA with AES-128-CBC,
//! and panics on AES-256-CBC. So such keys are decrypted here (OpenSSL's
//! `EVP_BytesToKey` with MD5, AES-CBC) and handed to russh unencrypted.

use crate::SshError;
use data_encoding::{BASE64, BASE64_MIME, HEXUPPER_PERMISSIVE};
use std::time::Duration;

/// The default of the most bcrypt-pbkdf rounds an encrypted OpenSSH key may
/// ask for (`REMORA_MAX_KDF_ROUNDS`). `ssh-keygen` writes 16; each round
/// costs a few milliseconds, and the count is the key's own, up to 2³². Above
/// the cap the key is refused before any work is done.
pub const DEFAULT_MAX_KDF_ROUNDS: u32 = 1024;

/// The default time limit of parsing (decrypting) one key.
pub const DEFAULT_PARSE_TIMEOUT: Duration = Duration::from_secs(10);

/// What parsing one private key may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLimits {
    /// Most bcrypt-pbkdf rounds of an encrypted OpenSSH key (`REMORA_MAX_KDF_ROUNDS`).
    pub max_kdf_rounds: u32,
    /// Parsing that takes longer is abandoned (the key is refused).
    pub parse_timeout: Duration,
}

impl Default for KeyLimits {
    fn default() -> Self {
        KeyLimits {
            max_kdf_rounds: DEFAULT_MAX_KDF_ROUNDS,
            parse_timeout: DEFAULT_PARSE_TIMEOUT,
        }
    }
}

/// Parse a key on the blocking pool, never on an async runtime thread (the
/// KDF of an encrypted key is CPU work), within `limits`: too many rounds is
/// refused at once, parsing past `parse_timeout` is refused too (`BadKey`,
/// which the API answers as 422).
pub async fn parse_private_key_async(
    text: &str,
    passphrase: Option<&str>,
    limits: KeyLimits,
) -> Result<russh::keys::PrivateKey, SshError> {
    check_kdf_rounds(text, limits.max_kdf_rounds)?;
    let (text, passphrase) = (text.to_string(), passphrase.map(str::to_string));
    let work = tokio::task::spawn_blocking(move || {
        parse_private_key_with(&text, passphrase.as_deref(), limits.max_kdf_rounds)
    });
    match tokio::time::timeout(limits.parse_timeout, work).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(SshError::BadKey(format!("parsing the key failed: {e}"))),
        Err(_) => Err(SshError::BadKey(format!(
            "parsing the key took longer than {:?}; lower its bcrypt rounds (`ssh-keygen -p -a 16 -f KEY`)",
            limits.parse_timeout
        ))),
    }
}

/// Refuse an encrypted OpenSSH key whose bcrypt rounds exceed `max`.
fn check_kdf_rounds(text: &str, max: u32) -> Result<(), SshError> {
    if let Some(rounds) = openssh_kdf_rounds(text) {
        if rounds > max {
            return Err(SshError::BadKey(format!(
                "the key asks for {rounds} bcrypt rounds; at most {max} are accepted \
                 (REMORA_MAX_KDF_ROUNDS; re-encrypt it with `ssh-keygen -p -a 16 -f KEY`)"
            )));
        }
    }
    Ok(())
}

/// [`parse_private_key_with`] under the default rounds cap (synchronous: call
/// it off the async runtime, or use [`parse_private_key_async`]).
pub fn parse_private_key(
    text: &str,
    passphrase: Option<&str>,
) -> Result<russh::keys::PrivateKey, SshError> {
    parse_private_key_with(text, passphrase, DEFAULT_MAX_KDF_ROUNDS)
}

/// Parse (and decrypt) a private key, refusing one that asks for more than
/// `max_kdf_rounds` bcrypt rounds before any work is done.
pub fn parse_private_key_with(
    text: &str,
    passphrase: Option<&str>,
    max_kdf_rounds: u32,
) -> Result<russh::keys::PrivateKey, SshError> {
    check_kdf_rounds(text, max_kdf_rounds)?;
    let decoded = match decrypt_legacy_pem(text, passphrase)? {
        Some(plain) => russh::keys::decode_secret_key(&plain, None),
        None => russh::keys::decode_secret_key(text, passphrase),
    };
    decoded.map_err(|e| SshError::BadKey(e.to_string()))
}

/// The bcrypt-pbkdf rounds of an encrypted `openssh-key-v1` key, read from
/// its header (`None` for any other text or an unencrypted key).
fn openssh_kdf_rounds(text: &str) -> Option<u32> {
    let mut inside = false;
    let mut body = String::new();
    for line in text.lines().map(str::trim) {
        if line == "-----BEGIN OPENSSH PRIVATE KEY-----" {
            inside = true;
        } else if line.starts_with("-----END ") {
            break;
        } else if inside {
            body.push_str(line);
        }
    }
    let data = BASE64.decode(body.as_bytes()).ok()?;
    let rest = data.strip_prefix(b"openssh-key-v1\0")?;
    fn string(b: &[u8]) -> Option<(&[u8], &[u8])> {
        let n = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
        let s = b.get(4..4usize.checked_add(n)?)?;
        Some((s, &b[4 + n..]))
    }
    let (_cipher, rest) = string(rest)?;
    let (kdf, rest) = string(rest)?;
    if kdf != b"bcrypt" {
        return None;
    }
    let (opts, _) = string(rest)?;
    let (_salt, opts) = string(opts)?;
    Some(u32::from_be_bytes(opts.get(..4)?.try_into().ok()?))
}

/// `Some(unencrypted PEM)` for a legacy encrypted PEM key, `None` for any
/// other text.
fn decrypt_legacy_pem(text: &str, passphrase: Option<&str>) -> Result<Option<String>, SshError> {
    let mut label = None;
    let mut dek = None;
    let mut encrypted = false;
    let mut body = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("-----BEGIN ") {
            label = rest.strip_suffix("-----").map(str::to_string);
        } else if line.starts_with("-----END ") {
            break;
        } else if label.is_some() {
            if line.eq_ignore_ascii_case("Proc-Type: 4,ENCRYPTED") {
                encrypted = true;
            } else if let Some(v) = line.strip_prefix("DEK-Info:") {
                dek = Some(v.trim().to_string());
            } else if !line.contains(':') {
                body.push_str(line);
            }
        }
    }
    let (Some(label), true) = (label, encrypted) else {
        return Ok(None);
    };
    let bad = |m: &str| SshError::BadKey(m.to_string());
    let dek = dek.ok_or_else(|| bad("encrypted PEM key without a DEK-Info header"))?;
    let (cipher, iv_hex) = dek
        .split_once(',')
        .ok_or_else(|| bad("malformed DEK-Info header"))?;
    let iv = HEXUPPER_PERMISSIVE
        .decode(iv_hex.trim().as_bytes())
        .map_err(|_| bad("malformed DEK-Info IV"))?;
    let pass = passphrase.ok_or_else(|| bad("the key is encrypted: a passphrase is needed"))?;
    let data = BASE64_MIME
        .decode(body.as_bytes())
        .map_err(|_| bad("malformed PEM body"))?;
    let der = match (cipher.trim(), iv.len()) {
        ("AES-128-CBC", 16) => aes_cbc_decrypt::<aes::Aes128>(
            &data,
            &evp_bytes_to_key(pass.as_bytes(), &iv[..8], 16),
            &iv,
        ),
        ("AES-256-CBC", 16) => aes_cbc_decrypt::<aes::Aes256>(
            &data,
            &evp_bytes_to_key(pass.as_bytes(), &iv[..8], 32),
            &iv,
        ),
        (c, _) => {
            return Err(SshError::BadKey(format!(
                "unsupported PEM encryption {c} (AES-128-CBC and AES-256-CBC are supported)"
            )))
        }
    }
    .ok_or_else(|| bad("wrong passphrase"))?;
    let mut pem = format!("-----BEGIN {label}-----\n");
    for chunk in BASE64.encode(&der).as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    Ok(Some(pem))
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one iteration, as legacy PEM
/// encryption uses it.
fn evp_bytes_to_key(pass: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    let mut prev: Vec<u8> = Vec::new();
    while out.len() < len {
        let mut c = md5::Context::new();
        c.consume(&prev);
        c.consume(pass);
        c.consume(salt);
        prev = c.finalize().0.to_vec();
        out.extend_from_slice(&prev);
    }
    out.truncate(len);
    out
}

fn aes_cbc_decrypt<C>(data: &[u8], key: &[u8], iv: &[u8]) -> Option<Vec<u8>>
where
    C: aes::cipher::BlockCipherDecrypt + aes::cipher::KeyInit,
    cbc::Decryptor<C>: aes::cipher::KeyIvInit + aes::cipher::BlockModeDecrypt,
{
    use aes::cipher::{block_padding::Pkcs7, BlockModeDecrypt, KeyIvInit};
    let d = cbc::Decryptor::<C>::new_from_slices(key, iv).ok()?;
    let mut buf = data.to_vec();
    d.decrypt_padded::<Pkcs7>(&mut buf).ok().map(|p| p.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ed25519 key from `ssh-keygen -a ROUNDS -N pass`, its rounds then
    /// raised in the header (no need to wait for a real 2^31-round key).
    #[test]
    fn an_openssh_key_asking_for_too_many_rounds_is_refused_at_once() {
        use std::process::Command;
        let dir = tempfile::tempdir().unwrap();
        let k = dir.path().join("k");
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-a", "16", "-N", "pass", "-f"])
            .arg(&k)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("skipped: no ssh-keygen");
            return;
        }
        let text = std::fs::read_to_string(&k).unwrap();
        assert_eq!(openssh_kdf_rounds(&text), Some(16));
        assert!(parse_private_key(&text, Some("pass")).is_ok());
        // Rewrite the rounds field to 2^31.
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let mut data = BASE64.decode(body.as_bytes()).unwrap();
        let at = data.windows(6).position(|w| w == b"bcrypt").unwrap();
        // bcrypt, then the options string: u32 len, u32 salt len, salt, u32 rounds.
        let opts = at + 6 + 4;
        let salt_len = u32::from_be_bytes(data[opts..opts + 4].try_into().unwrap()) as usize;
        let r = opts + 4 + salt_len;
        data[r..r + 4].copy_from_slice(&(1u32 << 31).to_be_bytes());
        let evil = format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            BASE64.encode(&data)
        );
        let started = std::time::Instant::now();
        let e = parse_private_key(&evil, Some("pass")).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(e.to_string().contains("2147483648 bcrypt rounds"), "{e}");
    }

    #[test]
    fn evp_bytes_to_key_matches_openssl() {
        // `openssl enc -aes-256-cbc -k secret -S 0102030405060708 -md md5 -P`
        let k = evp_bytes_to_key(b"secret", &[1, 2, 3, 4, 5, 6, 7, 8], 32);
        assert_eq!(
            data_encoding::HEXUPPER.encode(&k),
            "C9E5A1BD216DBE1317E230CEF48F38EE7F0E17AD64022144BCCEC4A1AA2879AB"
        );
        assert_eq!(
            evp_bytes_to_key(b"secret", &[1, 2, 3, 4, 5, 6, 7, 8], 16),
            k[..16]
        );
    }

    /// Keys written by `ssh-keygen -m PEM` (AES-128-CBC) and `openssl …
    /// -aes256` (AES-256-CBC), RSA and ECDSA; skipped where the tools are
    /// missing.
    #[test]
    fn decrypts_legacy_pem_keys_from_ssh_keygen_and_openssl() {
        use std::process::Command;
        let dir = tempfile::tempdir().unwrap();
        let run = |cmd: &mut Command| cmd.output().map(|o| o.status.success()).unwrap_or(false);
        for (kind, bits, ossl) in [
            ("rsa", "2048", ["rsa", "-traditional"]),
            ("ecdsa", "256", ["ec", "-param_out"]),
        ] {
            let k = dir.path().join(kind);
            if !run(Command::new("ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    kind,
                    "-b",
                    bits,
                    "-m",
                    "PEM",
                    "-N",
                    "pass phrase",
                    "-f",
                ])
                .arg(&k))
            {
                eprintln!("skipped: ssh-keygen unavailable");
                return;
            }
            let text = std::fs::read_to_string(&k).unwrap();
            assert!(text.contains("AES-128-CBC"), "{text}");
            let key = parse_private_key(&text, Some("pass phrase")).unwrap();
            assert!(matches!(
                parse_private_key(&text, Some("wrong")),
                Err(SshError::BadKey(_))
            ));
            assert!(matches!(
                parse_private_key(&text, None),
                Err(SshError::BadKey(_))
            ));
            // The same key re-encrypted with AES-256-CBC by openssl.
            let k256 = dir.path().join(format!("{kind}-256"));
            let ossl_args: &[&str] = if ossl[0] == "rsa" { &ossl } else { &ossl[..1] };
            let ok = run(Command::new("openssl")
                .args(ossl_args)
                .args([
                    "-passin",
                    "pass:pass phrase",
                    "-aes256",
                    "-passout",
                    "pass:other phrase",
                    "-in",
                ])
                .arg(&k)
                .arg("-out")
                .arg(&k256));
            if ok {
                let text = std::fs::read_to_string(&k256).unwrap();
                assert!(text.contains("AES-256-CBC"), "{text}");
                let again = parse_private_key(&text, Some("other phrase")).unwrap();
                assert_eq!(again.public_key(), key.public_key());
            }
        }
    }

    #[test]
    fn unencrypted_and_openssh_text_pass_through() {
        assert!(decrypt_legacy_pem(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
            None
        )
        .unwrap()
        .is_none());
        assert!(decrypt_legacy_pem(
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
            None
        )
        .unwrap()
        .is_none());
    }
}
