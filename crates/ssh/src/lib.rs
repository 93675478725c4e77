//! SSH client side of Remora: connect with russh, check the pinned host key
//! before any credential is sent, authenticate, and hand out exec channels
//! from a per-server pool of authenticated connections.

pub mod chain;
pub mod demo;
pub mod keys;
pub mod pool;
pub mod trust;

use remora_domain::ErrorCode;
use russh::client::{self, Handle, KeyboardInteractiveAuthResponse, Msg};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use pool::Pool;
pub use russh::Sig;
pub use trust::TrustedCa;

#[derive(Clone, Default)]
pub struct Credentials {
    pub password: Option<String>,
    pub private_key: Option<String>,
    pub passphrase: Option<String>,
    /// An OpenSSH user certificate for `private_key`
    /// (`ssh-ed25519-cert-v01@openssh.com AAAA…`).
    pub certificate: Option<String>,
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
            .field("certificate", &self.certificate.is_some())
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
            certificate: s.certificate,
        },
        pinned: server.host_key_fingerprint.clone(),
        trusted_cas: Vec::new(),
        jumps: Vec::new(),
        server_id: Some(server.id.clone()),
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
    /// CAs whose host certificates are accepted instead of a pin (only those
    /// whose patterns cover `host` count).
    pub trusted_cas: Vec<TrustedCa>,
    /// Jump hosts, the first one reached directly, each next one through the
    /// one before, `host` through the last. A hop's own `jumps` is ignored.
    pub jumps: Vec<Target>,
    /// The stored server this target is (for pinning a hop's key on first use).
    pub server_id: Option<String>,
}

impl Target {
    /// `user@host:port`, how errors name a host.
    pub fn name(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }

    /// The trusted CAs whose patterns cover this host.
    fn cas_for_host(&self) -> Vec<TrustedCa> {
        self.trusted_cas
            .iter()
            .filter(|ca| trust::patterns_match(&ca.patterns, &self.host, self.port))
            .cloned()
            .collect()
    }
}

/// An I/O error as a job's reason; "too many open files" says which limit and what to change.
pub fn io_reason(e: &std::io::Error) -> String {
    // EMFILE (24 on Linux and the BSDs): this process's RLIMIT_NOFILE is used up.
    if e.raw_os_error() == Some(24) {
        let limit = rlimit::Resource::NOFILE
            .get()
            .map(|(soft, _)| soft.to_string())
            .unwrap_or_else(|_| "?".into());
        return format!(
            "{e}: this process's open-file limit ({limit}) is used up by its connections; \
             raise it (LimitNOFILE= / ulimit -n) or lower REMORA_WORKER_CONCURRENCY or \
             REMORA_SSH_MAX_IDLE"
        );
    }
    e.to_string()
}

#[derive(Debug, Clone)]
pub struct SshConfig {
    pub connect_timeout: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_max: usize,
    /// Jump hosts allowed on the way to one server (`REMORA_MAX_JUMP_DEPTH`).
    pub max_jump_depth: usize,
    /// A pooled connection with no job on it for this long is closed (`REMORA_SSH_IDLE_TIMEOUT`).
    pub idle_timeout: Duration,
    /// At most this many pooled connections with no job on them are kept; past it the least
    /// recently used close first (`REMORA_SSH_MAX_IDLE`). Each holds a socket (an open file)
    /// on this side and a session process on the host.
    pub max_idle: usize,
    /// What parsing a stored private key may cost (`REMORA_MAX_KDF_ROUNDS`).
    pub key_limits: keys::KeyLimits,
}

/// Default of [`SshConfig::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default of [`SshConfig::max_idle`]: one per host of the largest batch by default.
pub const DEFAULT_MAX_IDLE: usize = 10_000;

impl Default for SshConfig {
    fn default() -> Self {
        SshConfig {
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(5),
            keepalive_max: 3,
            max_jump_depth: chain::DEFAULT_MAX_JUMP_DEPTH,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_idle: DEFAULT_MAX_IDLE,
            key_limits: keys::KeyLimits::default(),
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
    #[error("host key not trusted: {0}")]
    HostKeyUntrusted(String),
    #[error("unusable user certificate: {0}")]
    BadCertificate(String),
    #[error("jump host {hop} failed: {reason}")]
    JumpFailed { hop: String, reason: String },
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
            SshError::HostKeyUntrusted(_) => ErrorCode::HostKeyUntrusted,
            SshError::BadCertificate(_) => ErrorCode::BadCertificate,
            SshError::JumpFailed { .. } => ErrorCode::JumpFailed,
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

    /// This error, met while reaching jump host `hop`.
    pub fn at_hop(self, hop: &Target) -> SshError {
        match self {
            e @ SshError::JumpFailed { .. } => e,
            e => SshError::JumpFailed {
                hop: hop.name(),
                reason: e.to_string(),
            },
        }
    }
}

struct ClientHandler {
    host: String,
    pinned: Option<String>,
    /// The trusted CAs covering this host (non-empty: certificates are asked for).
    cas: Vec<TrustedCa>,
    seen: Arc<Mutex<Seen>>,
}

#[derive(Default)]
struct Seen {
    fingerprint: Option<String>,
    /// The presented key's algorithm (`ssh-ed25519`; a certificate's: its key's).
    key_type: Option<String>,
    /// Set when a trusted CA vouched for the presented host certificate.
    by_ca: bool,
    /// Why a presented host certificate was refused.
    untrusted: Option<String>,
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let mut seen = Seen::default();
        let ok = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                let fp = key.fingerprint(HashAlg::Sha256).to_string();
                let ok = match &self.pinned {
                    Some(p) => *p == fp,
                    None => true,
                };
                seen.fingerprint = Some(fp);
                seen.key_type = Some(key.algorithm().to_string());
                ok
            }
            PublicKeyOrCertificate::Certificate(c) => {
                seen.fingerprint = Some(c.public_key().fingerprint(HashAlg::Sha256).to_string());
                seen.key_type = Some(c.public_key().algorithm().to_string());
                let cas: Vec<&TrustedCa> = self.cas.iter().collect();
                match trust::check_host_certificate(c, &self.host, &cas) {
                    Ok(()) => {
                        seen.by_ca = true;
                        true
                    }
                    Err(why) => {
                        seen.untrusted = Some(why);
                        false
                    }
                }
            }
        };
        if let Ok(mut s) = self.seen.lock() {
            *s = seen;
        }
        Ok(ok)
    }
}

/// One authenticated SSH connection.
pub struct Connection {
    handle: Handle<ClientHandler>,
    fingerprint: String,
    /// True when a trusted CA vouched for the host (no pin needed).
    pub verified_by_ca: bool,
    pub connected_in: Duration,
    /// The jump connection this one is tunnelled through (kept alive as
    /// long as this one is).
    via: Option<Arc<Connection>>,
    name: String,
    server_id: Option<String>,
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

pub use keys::{parse_private_key, parse_private_key_async, KeyLimits};

impl Connection {
    /// Connect to `target`, through its jump hosts if it has any (each hop
    /// connected here, not shared: see [`Pool`] for shared jump connections).
    pub async fn connect(target: &Target, cfg: &SshConfig) -> Result<Connection, SshError> {
        let mut via: Option<Arc<Connection>> = None;
        for hop in &target.jumps {
            let c = Connection::connect_via(hop, via.clone(), cfg)
                .await
                .map_err(|e| e.at_hop(hop))?;
            via = Some(Arc::new(c));
        }
        Connection::connect_via(target, via, cfg).await
    }

    /// Connect to `target` directly (`via` = `None`) or through a
    /// `direct-tcpip` channel of the authenticated connection `via`;
    /// `target.jumps` is not looked at.
    pub async fn connect_via(
        target: &Target,
        via: Option<Arc<Connection>>,
        cfg: &SshConfig,
    ) -> Result<Connection, SshError> {
        let addr = format!("{}:{}", target.host, target.port);
        let started = Instant::now();
        // A user certificate outside its validity window is refused before
        // anything is sent.
        let user_cert = match &target.creds.certificate {
            None => None,
            Some(text) => {
                let c = trust::parse_certificate(text).map_err(SshError::BadCertificate)?;
                trust::validity(&c).map_err(SshError::BadCertificate)?;
                Some(c)
            }
        };
        let secs = cfg.connect_timeout.as_secs().max(1);
        let cas = target.cas_for_host();
        let mut preferred = russh::Preferred::default();
        if !cas.is_empty() {
            preferred.host_key_certificates = preferred.key.clone();
        }
        let config = Arc::new(client::Config {
            keepalive_interval: Some(cfg.keepalive_interval),
            keepalive_max: cfg.keepalive_max,
            inactivity_timeout: None,
            nodelay: true,
            preferred,
            ..Default::default()
        });
        let seen = Arc::new(Mutex::new(Seen::default()));
        let handler = ClientHandler {
            host: target.host.clone(),
            pinned: target.pinned.clone(),
            cas,
            seen: seen.clone(),
        };
        let connected = match &via {
            None => {
                let tcp = match tokio::time::timeout(
                    cfg.connect_timeout,
                    tokio::net::TcpStream::connect(&addr),
                )
                .await
                {
                    Err(_) => return Err(SshError::ConnectTimeout { addr, secs }),
                    Ok(Err(e)) => {
                        return Err(SshError::ConnectFailed {
                            addr,
                            reason: io_reason(&e),
                        })
                    }
                    Ok(Ok(s)) => s,
                };
                let _ = tcp.set_nodelay(true);
                let remaining = cfg.connect_timeout.saturating_sub(started.elapsed());
                tokio::time::timeout(remaining, client::connect_stream(config, tcp, handler)).await
            }
            Some(jump) => {
                let hop = jump.name.clone();
                let opened = tokio::time::timeout(
                    cfg.connect_timeout,
                    jump.handle.channel_open_direct_tcpip(
                        target.host.clone(),
                        target.port as u32,
                        "127.0.0.1",
                        0,
                    ),
                )
                .await;
                let ch = match opened {
                    Err(_) => {
                        return Err(SshError::JumpFailed {
                            hop,
                            reason: format!("no tunnel to {addr} within {secs} s"),
                        })
                    }
                    Ok(Err(e)) => {
                        return Err(SshError::JumpFailed {
                            hop,
                            reason: format!("could not open a tunnel to {addr}: {e}"),
                        })
                    }
                    Ok(Ok(ch)) => ch,
                };
                let remaining = cfg.connect_timeout.saturating_sub(started.elapsed());
                tokio::time::timeout(
                    remaining,
                    client::connect_stream(config, ch.into_stream(), handler),
                )
                .await
            }
        };
        let mut handle = match connected {
            Err(_) => return Err(SshError::ConnectTimeout { addr, secs }),
            Ok(Err(e)) => {
                let s = seen
                    .lock()
                    .map(|s| (s.fingerprint.clone(), s.untrusted.clone()));
                if let Ok((got, untrusted)) = s {
                    if let Some(why) = untrusted {
                        return Err(SshError::HostKeyUntrusted(format!("{addr}: {why}")));
                    }
                    if let (Some(expected), Some(got)) = (target.pinned.clone(), got) {
                        if expected != got {
                            return Err(SshError::HostKeyMismatch { expected, got });
                        }
                    }
                }
                return Err(SshError::ConnectFailed {
                    addr,
                    reason: e.to_string(),
                });
            }
            Ok(Ok(h)) => h,
        };
        let (fingerprint, verified_by_ca) = seen
            .lock()
            .map(|s| (s.fingerprint.clone().unwrap_or_default(), s.by_ca))
            .unwrap_or_default();
        let remaining = cfg
            .connect_timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        match tokio::time::timeout(
            remaining,
            authenticate(&mut handle, target, user_cert, cfg.key_limits),
        )
        .await
        {
            Err(_) => return Err(SshError::ConnectTimeout { addr, secs }),
            Ok(r) => r?,
        }
        Ok(Connection {
            handle,
            fingerprint,
            verified_by_ca,
            connected_in: started.elapsed(),
            name: target.name(),
            server_id: target.server_id.clone(),
            via,
        })
    }

    /// `user@host:port` of this connection.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stored server this connection reached, if known.
    pub fn server_id(&self) -> Option<&str> {
        self.server_id.as_deref()
    }

    /// The jump connection this one goes through, if any.
    pub fn via(&self) -> Option<&Arc<Connection>> {
        self.via.as_ref()
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

    /// Like [`Connection::exec`], on a pseudo-terminal: sshd then sends stdout and stderr
    /// merged on the one stream. The terminal starts raw for input (no echo, no line editing,
    /// no signal characters, no CR/LF translation) so the program sent on stdin reaches the
    /// shell as written; output keeps a terminal's processing except LF to CRLF.
    pub async fn exec_pty(&self, command: &str) -> Result<Channel<Msg>, SshError> {
        use russh::Pty;
        let ch = self
            .handle
            .channel_open_session()
            .await
            .map_err(session_open_error)?;
        let modes = [
            (Pty::ECHO, 0),
            (Pty::ECHONL, 0),
            (Pty::ICANON, 0),
            (Pty::ISIG, 0),
            (Pty::IEXTEN, 0),
            (Pty::ICRNL, 0),
            (Pty::IXON, 0),
            (Pty::ONLCR, 0),
        ];
        ch.request_pty(true, "xterm", 80, 24, 0, 0, &modes)
            .await
            .map_err(|e| SshError::Ssh(e.to_string()))?;
        ch.exec(true, command.as_bytes().to_vec())
            .await
            .map_err(|e| SshError::Ssh(e.to_string()))?;
        Ok(ch)
    }

    /// Run a short command to its end, collecting its output (bounded by
    /// `timeout`).
    pub async fn run(&self, command: &str, timeout: Duration) -> Result<Output, SshError> {
        self.run_with_stdin(command, b"", timeout).await
    }

    /// Like [`Conn::run`], with `stdin` written to the command before EOF.
    pub async fn run_with_stdin(
        &self,
        command: &str,
        stdin: &[u8],
        timeout: Duration,
    ) -> Result<Output, SshError> {
        let fut = async {
            let mut ch = self.exec(command).await?;
            if !stdin.is_empty() {
                ch.data(stdin)
                    .await
                    .map_err(|e| SshError::Ssh(e.to_string()))?;
            }
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
    Ok(probe_host_key_typed(host, port, timeout).await?.0)
}

/// [`probe_host_key`] with the key's algorithm (`ssh-ed25519`): (fingerprint, algorithm).
pub async fn probe_host_key_typed(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<(String, String), SshError> {
    let addr = format!("{host}:{port}");
    let secs = timeout.as_secs().max(1);
    let seen = Arc::new(Mutex::new(Seen::default()));
    // A pin that can never match: the handshake stops right after the key is seen.
    let handler = ClientHandler {
        host: host.to_string(),
        pinned: Some(String::from("-")),
        cas: Vec::new(),
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
    let got = seen.lock().ok().and_then(|s| {
        s.fingerprint
            .clone()
            .map(|fp| (fp, s.key_type.clone().unwrap_or_default()))
    });
    got.ok_or_else(|| SshError::Ssh(format!("{addr} presented no host key")))
}

/// Most prompts keyboard-interactive may send before we give up.
const KBD_INTERACTIVE_ROUNDS: usize = 5;

async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    target: &Target,
    user_cert: Option<russh::keys::Certificate>,
    limits: keys::KeyLimits,
) -> Result<(), SshError> {
    let user = target.user.clone();
    let mut tried = Vec::new();
    let err = |e: russh::Error| SshError::Ssh(e.to_string());
    if let Some(text) = &target.creds.private_key {
        // Off the runtime, under the rounds cap and a time limit: a stored key with
        // 2^31 rounds must not stall the worker's event loop.
        let key = parse_private_key_async(text, target.creds.passphrase.as_deref(), limits).await?;
        let res = match user_cert {
            Some(cert) => {
                tried.push("user certificate");
                handle
                    .authenticate_openssh_cert(user.clone(), Arc::new(key), cert)
                    .await
                    .map_err(err)?
            }
            None => {
                tried.push("public key");
                let hash = handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(err)?
                    .flatten();
                handle
                    .authenticate_publickey(
                        user.clone(),
                        PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                    )
                    .await
                    .map_err(err)?
            }
        };
        if res.success() {
            return Ok(());
        }
    }
    if let Some(pw) = &target.creds.password {
        let res = handle
            .authenticate_password(user.clone(), pw.clone())
            .await
            .map_err(err)?;
        if res.success() {
            return Ok(());
        }
        tried.push("password");
        // PAM servers (and FreeBSD's default) take the password only by
        // keyboard-interactive: answer every hidden prompt with it.
        let mut reply = handle
            .authenticate_keyboard_interactive_start(user.clone(), None)
            .await
            .map_err(err)?;
        for _ in 0..KBD_INTERACTIVE_ROUNDS {
            match reply {
                KeyboardInteractiveAuthResponse::Success => return Ok(()),
                KeyboardInteractiveAuthResponse::Failure { .. } => break,
                KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                    let answers = prompts
                        .iter()
                        .map(|p| if p.echo { String::new() } else { pw.clone() })
                        .collect();
                    reply = handle
                        .authenticate_keyboard_interactive_respond(answers)
                        .await
                        .map_err(err)?;
                }
            }
        }
        if matches!(reply, KeyboardInteractiveAuthResponse::Success) {
            return Ok(());
        }
        tried.push("password by keyboard-interactive");
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
