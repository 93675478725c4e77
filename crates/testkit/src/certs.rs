//! OpenSSH certificate authorities for tests: a [`Ca`] (an ed25519 key made by `ssh-keygen`)
//! signs host keys and user keys with a chosen [`Validity`].
//!
//! - Host certificates: [`crate::sshd::SshHostOptions::host_certificate`] signs the host's key at
//!   start and serves it (`HostCertificate`). Valid / expired / wrong principal / other CA are
//!   the combinations of CA, principals and validity. Clients trust the CA with
//!   [`Ca::known_hosts_line`] (`@cert-authority PATTERN KEY`).
//! - User certificates: [`crate::sshd::SshHostOptions::trusted_user_ca`] makes sshd trust the CA
//!   (`TrustedUserCAKeys`); [`crate::sshd::SshHost::user_certificate`] makes a fresh key that is
//!   not in `authorized_keys` and signs it (principal: the user name), for
//!   `ssh -i KEY -o CertificateFile=CERT`.
//!
//! A `Ca` owns a temp dir with its key; dropping it removes the dir (certificates already issued
//! stay valid). Generating a CA takes a few milliseconds.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// A certificate's validity interval, as `ssh-keygen -V` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validity {
    /// From 5 minutes ago to a day from now.
    Valid,
    /// From two days ago to one day ago.
    Expired,
    /// From one day from now to two days from now.
    NotYetValid,
    /// Any `ssh-keygen -V` interval, e.g. `"-1m:+30s"`.
    Custom(String),
}

impl Validity {
    pub fn as_keygen_arg(&self) -> &str {
        match self {
            Validity::Valid => "-5m:+1d",
            Validity::Expired => "-2d:-1d",
            Validity::NotYetValid => "+1d:+2d",
            Validity::Custom(s) => s,
        }
    }
}

/// An SSH certificate authority. See the module docs.
pub struct Ca {
    _dir: tempfile::TempDir,
    key: PathBuf,
    public_key: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl Ca {
    pub fn new() -> Result<Ca> {
        if crate::which("ssh-keygen").is_none() {
            return crate::skip("ssh-keygen not found: install openssh-client");
        }
        let dir = tempfile::Builder::new()
            .prefix("remora-ca-")
            .tempdir()
            .context("creating CA temp dir")?;
        let key = dir.path().join("ca");
        keygen(
            Command::new("ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "remora-testkit-ca",
                    "-f",
                ])
                .arg(&key),
        )?;
        let public_key = fs::read_to_string(key.with_extension("pub"))?
            .trim()
            .to_string();
        Ok(Ca {
            _dir: dir,
            key,
            public_key,
        })
    }

    /// The CA's public key line (`ssh-ed25519 AAAA… remora-testkit-ca`), what a client or server
    /// trusts.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    pub fn private_key_path(&self) -> &Path {
        &self.key
    }

    /// A `known_hosts` line trusting this CA for host certificates of hosts matching `pattern`.
    /// OpenSSH matches `[host]:port` against it when the port is not 22 (so `[127.0.0.1]:*` or
    /// `*`), while the certificate's principals must contain the bare host name.
    pub fn known_hosts_line(&self, pattern: &str) -> String {
        format!("@cert-authority {pattern} {}", self.public_key)
    }

    /// Signs a host public key (file `public_key`, an OpenSSH `.pub`) for `principals`; the
    /// certificate is written to `out` and its text returned.
    pub fn sign_host_key(
        &self,
        public_key: &Path,
        principals: &[&str],
        validity: &Validity,
        out: &Path,
    ) -> Result<String> {
        sign(&self.key, public_key, true, principals, validity, out)
    }

    /// Signs a user public key for `principals` (user names); see [`Ca::sign_host_key`].
    pub fn sign_user_key(
        &self,
        public_key: &Path,
        principals: &[&str],
        validity: &Validity,
        out: &Path,
    ) -> Result<String> {
        sign(&self.key, public_key, false, principals, validity, out)
    }
}

/// `ssh-keygen -s` writes `<key>-cert.pub` beside its input: sign a copy named after `out`.
pub(crate) fn sign(
    ca_key: &Path,
    public_key: &Path,
    host: bool,
    principals: &[&str],
    validity: &Validity,
    out: &Path,
) -> Result<String> {
    if principals.is_empty() || principals.iter().any(|p| p.contains(',')) {
        bail!("certificate principals must be non-empty and contain no comma: {principals:?}");
    }
    if !ca_key.exists() {
        bail!(
            "CA key {} is gone (was the Ca dropped before the host?)",
            ca_key.display()
        );
    }
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix("-cert.pub"))
        .context("certificate path must end in -cert.pub")?;
    let input = out.with_file_name(format!("{name}.pub"));
    if input != public_key {
        fs::copy(public_key, &input)
            .with_context(|| format!("copying {}", public_key.display()))?;
    }
    let mut cmd = Command::new("ssh-keygen");
    cmd.arg("-q")
        .arg("-s")
        .arg(ca_key)
        .args(["-I", &format!("remora-testkit-{name}")])
        .args(["-n", &principals.join(",")])
        .args(["-V", validity.as_keygen_arg()]);
    if host {
        cmd.arg("-h");
    }
    keygen(cmd.arg(&input))?;
    fs::read_to_string(out).with_context(|| format!("reading {}", out.display()))
}

fn keygen(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .context("running ssh-keygen")?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
