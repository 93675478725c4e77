//! SSH client side of Remora: connect with russh, check the pinned host key
//! before any credential is sent, authenticate, and hand out exec channels
//! from a per-server pool of authenticated connections.

pub mod demo;
pub mod keys;
pub mod pool;

use remora_domain::ErrorCode;
use russh::client::{self, Handle, Msg};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use pool::Pool;
pub use russh::Sig;

#[derive(Clone, Default)]
pub struct Credentials {
    pub password: Option<String>,
    pub private_key: Option<String>,
    pub passphrase: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret, even in debug output.
        f.debug_struct("Credentials")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The connection target of a stored server with its decrypted secrets.
pub fn target_of(server: &remora_domain::Server, s: remora_store::PlainSecrets) -> Target {
    Target {
        host: server.hostname.clone(),
        port: server.port as u16,
        user: server.user.clone(),
        creds: Credentials {
            password: s.password,
            private_key: s.private_key,
            passphrase: s.passphrase,
        },
        pinned: server.host_key_fingerprint.clone(),
    }
}

#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub creds: Credentials,
    /// The pinned `SHA256:…` fingerprint; `None` trusts on first use.
    pub pinned: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SshConfig {
    pub connect_timeout: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_max: usize,
}

impl Default for SshConfig {
    fn default() -> Self {
        SshConfig {
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(5),
            keepalive_max: 3,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SshError {
    #[error("could not connect to {addr}: {reason}")]
    ConnectFailed { addr: String, reason: String },
    #[error("no SSH handshake with {addr} within {secs} s")]
    ConnectTimeout { addr: String, secs: u64 },
    #[error("host key mismatch: the server presented {got} but {expected} is pinned; accept the new key through the API if the change is expected")]
    HostKeyMismatch { expected: String, got: String },
    #[error("authentication failed for user {user}: {reason}")]
    AuthFailed { user: String, reason: String },
    #[error("unusable private key: {0}")]
    BadKey(String),
    /// The server refused a session channel as administratively prohibited
    /// (SSH_OPEN_ADMINISTRATIVELY_PROHIBITED). OpenSSH answers a session
    /// past MaxSessions ("no more sessions" in its log) with
    /// SSH_OPEN_CONNECT_FAILED instead, which is [`SshError::Ssh`].
    #[error("ssh error: {0}")]
    SessionRefused(String),
    #[error("ssh error: {0}")]
    Ssh(String),
}

impl SshError {
    /// Stable machine code stored in a job's `error_code`.
    pub fn code(&self) -> ErrorCode {
        match self {
            SshError::ConnectFailed { .. } => ErrorCode::ConnectFailed,
            SshError::ConnectTimeout { .. } => ErrorCode::ConnectTimeout,
            SshError::HostKeyMismatch { .. } => ErrorCode::HostKeyMismatch,
            SshError::AuthFailed { .. } => ErrorCode::AuthFailed,
            SshError::BadKey(_) => ErrorCode::BadKey,
            SshError::SessionRefused(_) | SshError::Ssh(_) => ErrorCode::SshError,
        }
    }
    /// A failure before any command could start, worth retrying.
    pub fn is_connect_level(&self) -> bool {
        matches!(
            self,
            SshError::ConnectFailed { .. } | SshError::ConnectTimeout { .. }
        )
    }
}

struct ClientHandler {
    pinned: Option<String>,
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let fp = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                key.fingerprint(HashAlg::Sha256).to_string()
            }
            PublicKeyOrCertificate::Certificate(c) => {
                c.public_key().fingerprint(HashAlg::Sha256).to_string()
            }
        };
        let ok = match &self.pinned {
            Some(p) => *p == fp,
            None => true,
        };
        if let Ok(mut s) = self.seen.lock() {
            *s = Some(fp);
        }
        Ok(ok)
    }
}

/// One authenticated SSH connection.
pub struct Connection {
    handle: Handle<ClientHandler>,
    fingerprint: String,
    pub connected_in: Duration,
}

/// What a short command printed and how it ended.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub exit_code: Option<u32>,
    pub exit_signal: Option<String>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

pub fn sig_name(s: &Sig) -> String {
    match s {
        Sig::ABRT => "ABRT".into(),
        Sig::ALRM => "ALRM".into(),
        Sig::FPE => "FPE".into(),
        Sig::HUP => "HUP".into(),
        Sig::ILL => "ILL".into(),
        Sig::INT => "INT".into(),
        Sig::KILL => "KILL".into(),
        Sig::PIPE => "PIPE".into(),
        Sig::QUIT => "QUIT".into(),
        Sig::SEGV => "SEGV".into(),
        Sig::TERM => "TERM".into(),
        Sig::USR1 => "USR1".into(),
        Sig::Custom(s) => s.clone(),
    }
}

pub use keys::parse_private_key;

impl Connection {
    pub async fn connect(target: &Target, cfg: &SshConfig) -> Result<Connection, SshError> {
        let addr = format!("{}:{}", target.host, target.port);
        let started = Instant::now();
        let config = Arc::new(client::Config {
            keepalive_interval: Some(cfg.keepalive_interval),
            keepalive_max: cfg.keepalive_max,
            inactivity_timeout: None,
            nodelay: true,
            ..Default::default()
        });
        let seen = Arc::new(Mutex::new(None));
        let handler = ClientHandler {
            pinned: target.pinned.clone(),
            seen: seen.clone(),
        };
        let secs = cfg.connect_timeout.as_secs().max(1);
        let tcp =
            match tokio::time::timeout(cfg.connect_timeout, tokio::net::TcpStream::connect(&addr))
                .await
            {
                Err(_) => return Err(SshError::ConnectTimeout { addr, secs }),
                Ok(Err(e)) => {
                    return Err(SshError::ConnectFailed {
                        addr,
                        reason: e.to_string(),
                    })
                }
                Ok(Ok(s)) => s,
            };
        let _ = tcp.set_nodelay(true);
        let remaining = cfg.connect_timeout.saturating_sub(started.elapsed());
        let connected =
            tokio::time::timeout(remaining, client::connect_stream(config, tcp, handler)).await;
        let mut handle = match connected {
            Err(_) => return Err(SshError::ConnectTimeout { addr, secs }),
            Ok(Err(e)) => {
                let got = seen.lock().ok().and_then(|s| s.clone());
                if let (Some(expected), Some(got)) = (target.pinned.clone(), got) {
                    if expected != got {
                        return Err(SshError::HostKeyMismatch { expected, got });
                    }
                }
                return Err(SshError::ConnectFailed {
                    addr,
                    reason: e.to_string(),
                });
            }
            Ok(Ok(h)) => h,
        };
        let fingerprint = seen.lock().ok().and_then(|s| s.clone()).unwrap_or_default();
        let remaining = cfg
            .connect_timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        match tokio::time::timeout(remaining, authenticate(&mut handle, target)).await {
            Err(_) => return Err(SshError::ConnectTimeout { addr, secs }),
            Ok(r) => r?,
        }
        Ok(Connection {
            handle,
            fingerprint,
            connected_in: started.elapsed(),
        })
    }

    /// SHA256 fingerprint of the host key the server presented.
    pub fn host_key_fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// One round trip (`keepalive@openssh.com` with a reply). sshd handles
    /// requests in order, so when this returns it has processed everything
    /// sent before it.
    pub async fn ping(&self) -> Result<(), SshError> {
        self.handle
            .send_ping()
            .await
            .map_err(|e| SshError::Ssh(e.to_string()))
    }

    /// Open a session channel and start `command` on it.
    pub async fn exec(&self, command: &str) -> Result<Channel<Msg>, SshError> {
        let ch = self
            .handle
            .channel_open_session()
            .await
            .map_err(session_open_error)?;
        ch.exec(true, command.as_bytes().to_vec())
            .await
            .map_err(|e| SshError::Ssh(e.to_string()))?;
        Ok(ch)
    }

    /// Run a short command to its end, collecting its output (bounded by
    /// `timeout`).
    pub async fn run(&self, command: &str, timeout: Duration) -> Result<Output, SshError> {
        let fut = async {
            let mut ch = self.exec(command).await?;
            ch.eof().await.map_err(|e| SshError::Ssh(e.to_string()))?;
            let mut out = Output::default();
            while let Some(msg) = ch.wait().await {
                match msg {
                    ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, .. } => out.stderr.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => out.exit_code = Some(exit_status),
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        out.exit_signal = Some(sig_name(&signal_name))
                    }
                    _ => {}
                }
            }
            Ok(out)
        };
        tokio::time::timeout(timeout, fut).await.map_err(|_| {
            SshError::Ssh(format!(
                "`{command}` did not finish within {} s",
                timeout.as_secs()
            ))
        })?
    }

    pub async fn disconnect(&self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// The error of a failed session channel open, by russh's variant.
fn session_open_error(e: russh::Error) -> SshError {
    match e {
        russh::Error::ChannelOpenFailure(russh::ChannelOpenFailure::AdministrativelyProhibited) => {
            SshError::SessionRefused(e.to_string())
        }
        e => SshError::Ssh(e.to_string()),
    }
}

/// The SHA256 fingerprint of the host key `host:port` presents, without
/// authenticating (no credential is sent).
pub async fn probe_host_key(host: &str, port: u16, timeout: Duration) -> Result<String, SshError> {
    let addr = format!("{host}:{port}");
    let secs = timeout.as_secs().max(1);
    let seen = Arc::new(Mutex::new(None));
    // A pin that can never match: the handshake stops right after the key is seen.
    let handler = ClientHandler {
        pinned: Some(String::from("-")),
        seen: seen.clone(),
    };
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        ..Default::default()
    });
    let fut = async {
        let tcp =
            tokio::net::TcpStream::connect(&addr)
                .await
                .map_err(|e| SshError::ConnectFailed {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })?;
        let _ = client::connect_stream(config, tcp, handler).await;
        Ok::<(), SshError>(())
    };
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => return Err(SshError::ConnectTimeout { addr, secs }),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(())) => {}
    }
    let fp = seen.lock().ok().and_then(|s| s.clone());
    fp.ok_or_else(|| SshError::Ssh(format!("{addr} presented no host key")))
}

async fn authenticate(handle: &mut Handle<ClientHandler>, target: &Target) -> Result<(), SshError> {
    let user = target.user.clone();
    let mut tried = Vec::new();
    if let Some(text) = &target.creds.private_key {
        let key = parse_private_key(text, target.creds.passphrase.as_deref())?;
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .map_err(|e| SshError::Ssh(e.to_string()))?
            .flatten();
        let res = handle
            .authenticate_publickey(
                user.clone(),
                PrivateKeyWithHashAlg::new(Arc::new(key), hash),
            )
            .await
            .map_err(|e| SshError::Ssh(e.to_string()))?;
        if res.success() {
            return Ok(());
        }
        tried.push("public key");
    }
    if let Some(pw) = &target.creds.password {
        let res = handle
            .authenticate_password(user.clone(), pw.clone())
            .await
            .map_err(|e| SshError::Ssh(e.to_string()))?;
        if res.success() {
            return Ok(());
        }
        tried.push("password");
    }
    let reason = if tried.is_empty() {
        "no password or private key is configured".to_string()
    } else {
        format!("the server rejected the {}", tried.join(" and the "))
    };
    Err(SshError::AuthFailed { user, reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::ChannelOpenFailure as F;

    #[test]
    fn only_an_administrative_refusal_is_session_refused() {
        let e = session_open_error(russh::Error::ChannelOpenFailure(
            F::AdministrativelyProhibited,
        ));
        assert!(matches!(e, SshError::SessionRefused(_)), "{e:?}");
        // The text (and code) stay what they were before the variant existed.
        assert_eq!(
            e.to_string(),
            "ssh error: Failed to open channel (AdministrativelyProhibited)"
        );
        assert_eq!(e.code(), ErrorCode::SshError);
        for other in [F::ConnectFailed, F::ResourceShortage, F::UnknownChannelType] {
            let e = session_open_error(russh::Error::ChannelOpenFailure(other));
            assert!(matches!(e, SshError::Ssh(_)), "{e:?}");
        }
        assert!(matches!(
            session_open_error(russh::Error::Disconnect),
            SshError::Ssh(_)
        ));
    }
}
