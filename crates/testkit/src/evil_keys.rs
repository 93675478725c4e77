//! Encrypted OpenSSH keys that ask for absurd bcrypt-pbkdf work: a real
//! `ssh-keygen -a 16 -N pass` key whose rounds field is then rewritten (no
//! need to wait for a real 2^31-round key).

use anyhow::{bail, Context, Result};
use data_encoding::BASE64;
use std::process::Command;

/// The passphrase of every key made here.
pub const PASSPHRASE: &str = "pass";

/// A fresh ed25519 key encrypted with [`PASSPHRASE`] and `-a 16`, as
/// `ssh-keygen` writes it (`SKIP:` error when ssh-keygen is missing).
pub fn encrypted_key() -> Result<String> {
    let dir = tempfile::tempdir()?;
    let k = dir.path().join("k");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-a", "16", "-N", PASSPHRASE, "-f"])
        .arg(&k)
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        _ => return crate::skip("ssh-keygen is not available"),
    }
    std::fs::read_to_string(&k).context("reading the generated key")
}

/// [`encrypted_key`] with its bcrypt rounds set to `rounds`.
pub fn key_with_rounds(rounds: u32) -> Result<String> {
    with_rounds(&encrypted_key()?, rounds)
}

/// `text` (an encrypted openssh-key-v1 key) with its bcrypt rounds set to `rounds`.
pub fn with_rounds(text: &str, rounds: u32) -> Result<String> {
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut data = BASE64.decode(body.as_bytes())?;
    let Some(at) = data.windows(6).position(|w| w == b"bcrypt") else {
        bail!("not a bcrypt-encrypted OpenSSH key");
    };
    // bcrypt, then the options string: u32 length, u32 salt length, salt, u32 rounds.
    let opts = at + 6 + 4;
    let salt_len = u32::from_be_bytes(data[opts..opts + 4].try_into()?) as usize;
    let r = opts + 4 + salt_len;
    data[r..r + 4].copy_from_slice(&rounds.to_be_bytes());
    let b64 = BASE64.encode(&data);
    let mut out = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(70) {
        out.push_str(std::str::from_utf8(line)?);
        out.push('\n');
    }
    out.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    Ok(out)
}
