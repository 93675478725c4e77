//! The demo SSH host started by `remora up --demo`: an in-process russh
//! server on loopback that runs commands as the current user with
//! `/bin/sh -c`. It accepts exactly one client key, generated into
//! `<data dir>/demo/` — nobody else can log in — and exists so a newcomer
//! can run a job at once. It is never started without `--demo`.

use russh::keys::ssh_key::{self, private::Ed25519Keypair, LineEnding};
use russh::keys::{HashAlg, PrivateKey, PublicKey};
use russh::server::{self, Auth, Msg, Server as _, Session};
use russh::{Channel, ChannelId, Sig};
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub struct DemoHost {
    pub addr: std::net::SocketAddr,
    /// OpenSSH text of the only client key the host accepts.
    pub client_key: String,
    pub host_key_fingerprint: String,
}

fn load_or_create_key(path: &Path) -> anyhow::Result<PrivateKey> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return Ok(PrivateKey::from_openssh(text)?);
    }
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    let text = key.to_openssh(LineEnding::LF)?;
    write_private(path, text.as_bytes())?;
    Ok(key)
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

impl DemoHost {
    /// Start on `listener` until `shutdown`; keys live in `<data_dir>/demo`.
    pub async fn start(
        listener: TcpListener,
        data_dir: &Path,
        shutdown: CancellationToken,
    ) -> anyhow::Result<DemoHost> {
        let dir = data_dir.join("demo");
        std::fs::create_dir_all(&dir)?;
        let host_key = load_or_create_key(&dir.join("host_key"))?;
        let client = load_or_create_key(&dir.join("client_key"))?;
        let addr = listener.local_addr()?;
        let host_key_fingerprint = host_key
            .public_key()
            .fingerprint(HashAlg::Sha256)
            .to_string();
        let config = Arc::new(server::Config {
            keys: vec![host_key],
            auth_rejection_time: std::time::Duration::from_millis(300),
            auth_rejection_time_initial: Some(std::time::Duration::ZERO),
            inactivity_timeout: None,
            keepalive_interval: Some(std::time::Duration::from_secs(10)),
            ..Default::default()
        });
        let mut srv = DemoServer {
            allowed: client.public_key().clone(),
        };
        tokio::spawn(async move {
            let running = srv.run_on_socket(config, &listener);
            let handle = running.handle();
            tokio::select! {
                _ = running => {}
                _ = shutdown.cancelled() => { handle.shutdown("shutting down".into()); }
            }
        });
        Ok(DemoHost {
            addr,
            client_key: client.to_openssh(LineEnding::LF)?.to_string(),
            host_key_fingerprint,
        })
    }
}

struct DemoServer {
    allowed: PublicKey,
}

impl server::Server for DemoServer {
    type Handler = DemoSession;
    fn new_client(&mut self, _peer: Option<std::net::SocketAddr>) -> DemoSession {
        DemoSession {
            allowed: self.allowed.clone(),
            procs: HashMap::new(),
        }
    }
}

struct Proc {
    stdin: Option<mpsc::Sender<Vec<u8>>>,
    pid: Option<u32>,
}

struct DemoSession {
    allowed: PublicKey,
    procs: HashMap<ChannelId, Proc>,
}

fn signal_name(sig: &Sig) -> &'static str {
    match sig {
        Sig::KILL => "KILL",
        Sig::INT => "INT",
        Sig::HUP => "HUP",
        Sig::QUIT => "QUIT",
        Sig::USR1 => "USR1",
        _ => "TERM",
    }
}

fn sig_from_number(n: i32) -> Sig {
    match n {
        1 => Sig::HUP,
        2 => Sig::INT,
        3 => Sig::QUIT,
        6 => Sig::ABRT,
        9 => Sig::KILL,
        11 => Sig::SEGV,
        13 => Sig::PIPE,
        15 => Sig::TERM,
        _ => Sig::Custom(n.to_string()),
    }
}

impl server::Handler for DemoSession {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if offer.public_key.key_data() == self.allowed.key_data() {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if key.public_key.key_data() == self.allowed.key_data() {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        let spawned = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(false)
            .spawn();
        let handle = session.handle();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let _ = handle
                    .extended_data(
                        channel,
                        1,
                        format!("cannot start /bin/sh: {e}\n").into_bytes(),
                    )
                    .await;
                let _ = handle.exit_status_request(channel, 127).await;
                let _ = handle.eof(channel).await;
                let _ = handle.close(channel).await;
                return Ok(());
            }
        };
        session.channel_success(channel)?;
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
        let mut stdin = child.stdin.take();
        tokio::spawn(async move {
            while let Some(buf) = rx.recv().await {
                if let Some(s) = stdin.as_mut() {
                    if s.write_all(&buf).await.is_err() {
                        break;
                    }
                }
            }
            drop(stdin);
        });
        self.procs.insert(
            channel,
            Proc {
                stdin: Some(tx),
                pid: child.id(),
            },
        );
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        tokio::spawn(async move {
            let h1 = handle.clone();
            let fwd_out = async move {
                let mut buf = vec![0u8; 32 * 1024];
                if let Some(o) = out.as_mut() {
                    while let Ok(n) = o.read(&mut buf).await {
                        if n == 0 || h1.data(channel, buf[..n].to_vec()).await.is_err() {
                            break;
                        }
                    }
                }
            };
            let h2 = handle.clone();
            let fwd_err = async move {
                let mut buf = vec![0u8; 32 * 1024];
                if let Some(o) = err.as_mut() {
                    while let Ok(n) = o.read(&mut buf).await {
                        if n == 0
                            || h2
                                .extended_data(channel, 1, buf[..n].to_vec())
                                .await
                                .is_err()
                        {
                            break;
                        }
                    }
                }
            };
            let (status, _, _) = tokio::join!(child.wait(), fwd_out, fwd_err);
            use std::os::unix::process::ExitStatusExt;
            match status {
                Ok(s) if s.code().is_some() => {
                    let _ = handle
                        .exit_status_request(channel, s.code().unwrap_or(1) as u32)
                        .await;
                }
                Ok(s) => {
                    let sig = sig_from_number(s.signal().unwrap_or(9));
                    let _ = handle
                        .exit_signal_request(channel, sig, false, String::new(), String::new())
                        .await;
                }
                Err(_) => {
                    let _ = handle.exit_status_request(channel, 255).await;
                }
            }
            let _ = handle.eof(channel).await;
            let _ = handle.close(channel).await;
        });
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(tx) = self.procs.get(&channel).and_then(|p| p.stdin.clone()) {
            let _ = tx.send(data.to_vec()).await;
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(p) = self.procs.get_mut(&channel) {
            p.stdin = None;
        }
        Ok(())
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        signal: Sig,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(pid) = self.procs.get(&channel).and_then(|p| p.pid) {
            let _ = tokio::process::Command::new("kill")
                .arg(format!("-{}", signal_name(&signal)))
                .arg(pid.to_string())
                .status()
                .await;
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.procs.remove(&channel);
        Ok(())
    }
}

#[allow(dead_code)]
fn _assert_key_types(_: ssh_key::Algorithm) {}
