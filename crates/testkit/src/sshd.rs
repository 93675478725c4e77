//! A real OpenSSH `sshd` on a loopback address, with its own throwaway unix user, for end-to-end
//! tests.
//!
//! Every [`SshHost`] owns: a temp dir (config, host key, client keys, log), an `sshd -D -e` child
//! process on a free port, and a unix user `rmt<pid>x<n>` with a random password and an ed25519
//! key in `authorized_keys`. Dropping it kills the sshd and everything the user still runs, deletes
//! the user and removes the temp dir. A detached reaper process does the same if the test process
//! dies without running `Drop` (nextest timeout, SIGKILL, abort), so crashed runs do not leave
//! users and daemons behind.
//!
//! [`SshHostOptions`] starts other kinds of host with the same guarantees: another login shell
//! ([`crate::shells`]), Dropbear ([`crate::dropbear`]), a BusyBox-only chroot
//! ([`crate::busybox`]), a network namespace ([`crate::netns`]), host/user certificates
//! ([`crate::certs`]), PAM keyboard-interactive, sudo rights ([`crate::sudo`]), extra sshd_config
//! lines.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::busybox::Chroot;
use crate::certs::Validity;
pub use crate::options::{ServerKind, SshHostOptions};
use crate::reaper::Reaper;

const SSHD: &str = "/usr/sbin/sshd";
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Waiting for a lock on /etc/passwd held by a parallel test process.
const USERDB_TIMEOUT: Duration = Duration::from_secs(60);

/// Key algorithm for [`SshHost::add_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Ed25519,
    /// ECDSA on P-256.
    Ecdsa,
    /// RSA, 2048 bits (enough for tests, fast to generate).
    Rsa,
}

impl KeyKind {
    fn keygen_args(self) -> &'static [&'static str] {
        match self {
            KeyKind::Ed25519 => &["-t", "ed25519"],
            KeyKind::Ecdsa => &["-t", "ecdsa", "-b", "256"],
            KeyKind::Rsa => &["-t", "rsa", "-b", "2048"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            KeyKind::Ed25519 => "ed25519",
            KeyKind::Ecdsa => "ecdsa",
            KeyKind::Rsa => "rsa",
        }
    }
}

/// A client key with its user certificate, from [`SshHost::user_certificate`].
#[derive(Debug, Clone)]
pub struct UserCertificate {
    pub private_key: String,
    pub private_key_path: PathBuf,
    /// The certificate line (`ssh-ed25519-cert-v01@openssh.com AAAA…`).
    pub certificate: String,
    pub certificate_path: PathBuf,
}

/// A running OpenSSH server on loopback plus its throwaway login user. See the module docs.
pub struct SshHost {
    ip: String,
    port: u16,
    dir: Option<tempfile::TempDir>,
    dir_path: PathBuf,
    user: String,
    /// Set only once `useradd` succeeded for a name we chose, so `Drop` never deletes a user that
    /// was not ours.
    user_created: bool,
    uid: u32,
    home: PathBuf,
    password: String,
    private_key: String,
    private_key_path: PathBuf,
    host_key_fingerprint: String,
    child: Option<Child>,
    reaper: Option<Reaper>,
    keys_added: u32,
    opts: SshHostOptions,
    chroot: Option<Chroot>,
    sudoers_file: Option<PathBuf>,
}

impl std::fmt::Debug for SshHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshHost")
            .field("addr", &format_args!("{}:{}", self.ip, self.port))
            .field("user", &self.user)
            .field("pid", &self.pid())
            .field("dir", &self.dir_path)
            .finish_non_exhaustive()
    }
}

impl SshHost {
    /// Starts an sshd on 127.0.0.1 and a free port. See [`SshHost::start_on`].
    pub fn start() -> Result<SshHost> {
        Self::start_on("127.0.0.1")
    }

    /// Starts an sshd on `ip` (any 127.x.y.z binds without setup) and a free port, with a fresh
    /// user and keys; returns once sshd is listening.
    ///
    /// Missing prerequisites (not root, no `/usr/sbin/sshd`) give an error starting with `SKIP:`,
    /// or a panic under `CI=true`: use [`crate::require!`].
    pub fn start_on(ip: &str) -> Result<SshHost> {
        SshHostOptions::new().ip(ip).start()
    }

    /// Starts a host as `opts` describe (see [`SshHostOptions`]).
    pub(crate) fn start_with(opts: SshHostOptions) -> Result<SshHost> {
        check_prerequisites(&opts)?;
        let ip = match &opts.netns {
            Some(placement) => placement.ip.clone(),
            None => opts.ip.clone().unwrap_or_else(|| "127.0.0.1".to_string()),
        };
        let dir = tempfile::Builder::new()
            .prefix("remora-sshd-")
            .tempdir()
            .context("creating sshd temp dir")?;
        let dir_path = dir.path().to_path_buf();
        let mut host = SshHost {
            ip,
            port: 0,
            dir: Some(dir),
            dir_path,
            user: String::new(),
            user_created: false,
            uid: 0,
            home: PathBuf::new(),
            password: String::new(),
            private_key: String::new(),
            private_key_path: PathBuf::new(),
            host_key_fingerprint: String::new(),
            child: None,
            reaper: None,
            keys_added: 0,
            opts,
            chroot: None,
            sudoers_file: None,
        };
        // From here on, any error drops `host`, which undoes whatever was already set up.
        let mut reaper = Reaper::spawn()?;
        reaper.tell(&format!("dir {}", host.dir_path.display()));
        host.reaper = Some(reaper);
        host.create_user()?;
        if host.opts.busybox_chroot {
            let gid = gid_of(&host.user)?;
            let reaper = host.reaper.as_mut().context("reaper")?;
            host.chroot = Some(Chroot::build(&host.user, host.uid, gid, reaper)?);
        }
        if let Some(rule) = host.opts.sudo {
            let reaper = host.reaper.as_mut().context("reaper")?;
            host.sudoers_file = Some(crate::sudo::install(&host.user, rule, reaper)?);
        }
        host.private_key_path = host.dir_path.join("id_ed25519");
        host.generate_key(
            KeyKind::Ed25519,
            None,
            false,
            &host.private_key_path.clone(),
        )?;
        host.private_key = fs::read_to_string(&host.private_key_path)?;
        host.generate_host_key()?;
        host.start_on_free_port()?;
        Ok(host)
    }

    /// The listen address, e.g. `"127.0.1.5"`.
    pub fn host(&self) -> String {
        self.ip.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ip:port`, for `TcpStream::connect` and the like.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// Name of the throwaway login user.
    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The user's home directory (removed on drop).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The user's password (password authentication is enabled; with
    /// [`SshHostOptions::pam_keyboard_interactive`] it is accepted by keyboard-interactive only).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The default client key: unencrypted ed25519, OpenSSH format.
    pub fn private_key(&self) -> &str {
        &self.private_key
    }

    pub fn private_key_path(&self) -> &Path {
        &self.private_key_path
    }

    /// The host key's fingerprint as `ssh-keygen -lf` prints it: `SHA256:<base64, unpadded>`.
    pub fn host_key_fingerprint(&self) -> String {
        self.host_key_fingerprint.clone()
    }

    /// The host public key line, e.g. `ssh-ed25519 AAAA... comment`.
    pub fn host_public_key(&self) -> Result<String> {
        Ok(
            fs::read_to_string(self.host_key_path().with_extension("pub"))?
                .trim()
                .to_string(),
        )
    }

    /// A `known_hosts` line for this host: `[ip]:port ssh-ed25519 AAAA...`.
    pub fn known_hosts_line(&self) -> Result<String> {
        let key = self.host_public_key()?;
        let mut parts = key.split_whitespace();
        let (alg, blob) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        Ok(format!("[{}]:{} {alg} {blob}", self.ip, self.port))
    }

    /// [`SshHost::known_hosts_line`] with the host name hashed (`|1|salt|hash ssh-ed25519 …`), as
    /// `ssh-keygen -H` writes it (`HashKnownHosts yes`).
    pub fn known_hosts_line_hashed(&self) -> Result<String> {
        let file = self.dir_path.join("known_hosts_to_hash");
        fs::write(&file, format!("{}\n", self.known_hosts_line()?))?;
        run(Command::new("ssh-keygen").arg("-H").arg("-f").arg(&file)).context("ssh-keygen -H")?;
        let hashed = fs::read_to_string(&file)?;
        let _ = fs::remove_file(&file);
        let _ = fs::remove_file(file.with_extension("old"));
        let line = hashed.lines().find(|l| l.starts_with("|1|"));
        Ok(line
            .context("ssh-keygen -H wrote no hashed line")?
            .to_string())
    }

    /// Everything sshd logged so far (all restarts), at `LogLevel VERBOSE`.
    pub fn log(&self) -> String {
        fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Number of TCP connections sshd accepted so far (`Connection from` lines in the log).
    /// Readiness is detected from the log, not by probing the port, so this count is exact.
    pub fn connection_count(&self) -> usize {
        let marker = match self.opts.server {
            ServerKind::OpenSsh => "Connection from ",
            ServerKind::Dropbear => "Child connection from ",
        };
        self.log().lines().filter(|l| l.contains(marker)).count()
    }

    /// Which server this host runs.
    pub fn server_kind(&self) -> ServerKind {
        self.opts.server
    }

    /// The network namespace the server runs in, if any.
    pub fn netns(&self) -> Option<&str> {
        self.opts.netns.as_ref().map(|p| p.netns.as_str())
    }

    /// The chroot tree of a BusyBox host ([`SshHostOptions::busybox_chroot`]).
    pub fn chroot_dir(&self) -> Option<&Path> {
        self.chroot.as_ref().map(Chroot::root)
    }

    /// The host certificate sshd serves ([`SshHostOptions::host_certificate`]).
    pub fn host_certificate_path(&self) -> Option<PathBuf> {
        self.opts
            .host_cert
            .as_ref()
            .map(|_| self.dir_path.join("hostkey_ed25519-cert.pub"))
    }

    /// A fresh ed25519 client key that is **not** in `authorized_keys`, with a certificate for
    /// it signed by `ca` for this user (principal: the user name): sshd accepts the key only
    /// through the certificate, and only with [`SshHostOptions::trusted_user_ca`] of the same CA.
    /// For `ssh -i KEY -o CertificateFile=CERT`.
    pub fn user_certificate(
        &mut self,
        ca: &crate::certs::Ca,
        validity: Validity,
    ) -> Result<UserCertificate> {
        self.keys_added += 1;
        let key = self
            .dir_path
            .join(format!("id_ed25519_cert{}", self.keys_added));
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C"])
            .arg(format!("{}@remora-testkit-cert", self.user))
            .arg("-f")
            .arg(&key))
        .context("ssh-keygen")?;
        // Not `<key>-cert.pub`: ssh would load that by itself, even without CertificateFile.
        let cert = key.with_file_name(format!("user_cert{}-cert.pub", self.keys_added));
        let text = ca.sign_user_key(&key.with_extension("pub"), &[&self.user], &validity, &cert)?;
        Ok(UserCertificate {
            private_key: fs::read_to_string(&key)?,
            private_key_path: key,
            certificate: text.trim().to_string(),
            certificate_path: cert,
        })
    }

    /// PID of the listening sshd, `None` while stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The temp dir holding config, keys and log.
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }

    /// An `ssh` client command logged in as the user with the default key, host key checking off;
    /// append the remote command with `.arg(..)`.
    pub fn ssh_command(&self) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-i")
            .arg(&self.private_key_path)
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ConnectTimeout=10",
                "-p",
            ])
            .arg(self.port.to_string())
            .arg(format!("{}@{}", self.user, self.ip))
            .stdin(Stdio::null());
        cmd
    }

    /// Generates another client key, authorizes it and returns the private key text.
    /// `pem`: PEM (`-m PEM`, "BEGIN RSA/EC PRIVATE KEY") instead of the OpenSSH format; OpenSSH
    /// cannot write ed25519 keys as PEM, so that combination is an error. Passphrases must be at
    /// least 5 characters (ssh-keygen's rule).
    pub fn add_key(
        &mut self,
        kind: KeyKind,
        passphrase: Option<&str>,
        pem: bool,
    ) -> Result<String> {
        let path = self.add_key_file(kind, passphrase, pem)?;
        Ok(fs::read_to_string(path)?)
    }

    /// Like [`SshHost::add_key`] but returns the private key's path (the public key is beside it,
    /// `.pub`).
    pub fn add_key_file(
        &mut self,
        kind: KeyKind,
        passphrase: Option<&str>,
        pem: bool,
    ) -> Result<PathBuf> {
        if pem && kind == KeyKind::Ed25519 {
            bail!("OpenSSH cannot write ed25519 private keys in PEM format");
        }
        self.keys_added += 1;
        let path = self.dir_path.join(format!(
            "id_{}_{}{}",
            kind.name(),
            self.keys_added,
            if pem { "_pem" } else { "" }
        ));
        self.generate_key(kind, passphrase, pem, &path)?;
        Ok(path)
    }

    /// Processes owned by the user, excluding sshd's own session processes (`sshd: ...`): what a
    /// test should see as "left running on the host". `(pid, command line)`.
    pub fn user_processes(&self) -> Vec<(u32, String)> {
        processes_of_uid(self.uid)
            .into_iter()
            .filter(|(_, cmd)| !cmd.starts_with("sshd:"))
            .collect()
    }

    /// sshd's per-connection processes running as the user (`sshd: user@notty`, one per
    /// authenticated connection, whatever its sessions): the connections clients hold open now.
    pub fn connection_processes(&self) -> usize {
        processes_of_uid(self.uid)
            .into_iter()
            .filter(|(_, cmd)| cmd.starts_with("sshd:"))
            .count()
    }

    /// Waits until [`SshHost::user_processes`] is empty; false on timeout.
    pub fn wait_no_user_processes(&self, timeout: Duration) -> bool {
        wait_until(timeout, || self.user_processes().is_empty())
    }

    /// Replaces the host key and restarts sshd on the same port: clients that pinned the old key
    /// must now see a mismatch.
    pub fn regenerate_host_key(&mut self) -> Result<()> {
        self.stop()?;
        self.generate_host_key()?;
        self.restart()
    }

    /// Stops the listening sshd (SIGTERM, SIGKILL after 5 s). Existing sessions are separate
    /// processes and keep running, as with a real sshd; new connections are refused.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    child.wait()?;
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            self.tell_reaper(&format!("nopid {}", child.id()));
        }
        Ok(())
    }

    /// Kills the listening sshd with SIGKILL (sessions survive, see [`SshHost::stop`]).
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            child.wait()?;
            self.tell_reaper(&format!("nopid {}", child.id()));
        }
        Ok(())
    }

    /// (Re)starts sshd on the same address and port; stops it first if running.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        // The old listener is gone, but another process may have grabbed the port meanwhile
        // (unlikely in the ephemeral range); retry briefly rather than fail on the first try.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.spawn_sshd() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() < deadline && is_addr_in_use(&e) => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir_path.join("sshd.log")
    }

    fn host_key_path(&self) -> PathBuf {
        self.dir_path.join("hostkey_ed25519")
    }

    fn config_path(&self) -> PathBuf {
        self.dir_path.join("sshd_config")
    }

    fn tell_reaper(&mut self, line: &str) {
        if let Some(reaper) = &mut self.reaper {
            reaper.tell(line);
        }
    }

    fn create_user(&mut self) -> Result<()> {
        let deadline = Instant::now() + USERDB_TIMEOUT;
        let mut name = format!("rmt{}", crate::unique_suffix());
        // A BusyBox host's sessions run chrooted, where /bin/sh is BusyBox ash.
        let shell = match (self.opts.login_shell, self.opts.busybox_chroot) {
            (Some(shell), _) => shell.path(),
            (None, true) => "/bin/sh",
            (None, false) => "/bin/bash",
        };
        loop {
            let out = Command::new("useradd")
                .args([
                    "-m",
                    "-s",
                    shell,
                    "-c",
                    "remora testkit throwaway user",
                    &name,
                ])
                .stdin(Stdio::null())
                .output()
                .context("running useradd")?;
            if out.status.success() {
                break;
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.code() == Some(9) || stderr.contains("already exists") {
                // A leftover from a crashed run with a recycled pid: pick the next name.
                name = format!("rmt{}", crate::unique_suffix());
            } else if !(is_userdb_contention(&out) && Instant::now() < deadline) {
                bail!("useradd {name} failed ({}): {}", out.status, stderr.trim());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.user = name;
        self.user_created = true;
        let user = self.user.clone();
        self.tell_reaper(&format!("user {user}"));

        let out = run(Command::new("getent").args(["passwd", &user]))?;
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 7 {
            bail!("unexpected getent output: {line:?}");
        }
        self.uid = fields[2].parse().context("uid")?;
        let gid: u32 = fields[3].parse().context("gid")?;
        self.home = PathBuf::from(fields[5]);

        // With `UsePAM no` a user without a password is locked and cannot log in even by key.
        self.password = crate::random_alnum(20)?;
        retry_userdb(|| {
            let mut child = Command::new("chpasswd")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()?;
            child
                .stdin
                .take()
                .context("chpasswd stdin")?
                .write_all(format!("{user}:{}\n", self.password).as_bytes())?;
            Ok(child.wait_with_output()?)
        })
        .context("chpasswd")?;

        let ssh_dir = self.home.join(".ssh");
        fs::create_dir_all(&ssh_dir)?;
        fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o700))?;
        let auth = ssh_dir.join("authorized_keys");
        File::create(&auth)?;
        fs::set_permissions(&auth, fs::Permissions::from_mode(0o600))?;
        std::os::unix::fs::chown(&ssh_dir, Some(self.uid), Some(gid))?;
        std::os::unix::fs::chown(&auth, Some(self.uid), Some(gid))?;
        if shell.ends_with("/fish") {
            // fish creates its config and data directories at first start; two logins at once
            // race on that ("File exists") and one of them fails. Create them up front.
            for d in [
                ".config",
                ".config/fish",
                ".local",
                ".local/share",
                ".local/share/fish",
                ".cache",
            ] {
                let dir = self.home.join(d);
                fs::create_dir_all(&dir)?;
                std::os::unix::fs::chown(&dir, Some(self.uid), Some(gid))?;
            }
        }
        Ok(())
    }

    fn generate_key(
        &self,
        kind: KeyKind,
        passphrase: Option<&str>,
        pem: bool,
        path: &Path,
    ) -> Result<()> {
        let mut cmd = Command::new("ssh-keygen");
        cmd.arg("-q")
            .args(kind.keygen_args())
            .args(["-N", passphrase.unwrap_or("")])
            .args(["-C", &format!("{}@remora-testkit", self.user)]);
        if pem {
            cmd.args(["-m", "PEM"]);
        }
        cmd.arg("-f").arg(path);
        run(&mut cmd).context("ssh-keygen")?;
        let public = fs::read_to_string(path.with_extension(pub_ext(path)))?;
        let mut auth = OpenOptions::new()
            .append(true)
            .open(self.home.join(".ssh/authorized_keys"))?;
        auth.write_all(public.trim_end().as_bytes())?;
        auth.write_all(b"\n")?;
        Ok(())
    }

    fn generate_host_key(&mut self) -> Result<()> {
        let key = self.host_key_path();
        let _ = fs::remove_file(&key);
        let _ = fs::remove_file(key.with_extension("pub"));
        run(Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "remora-testkit-host",
                "-f",
            ])
            .arg(&key))
        .context("generating host key")?;
        let out = run(Command::new("ssh-keygen")
            .arg("-lf")
            .arg(key.with_extension("pub")))?;
        let text = String::from_utf8_lossy(&out.stdout);
        self.host_key_fingerprint = text
            .split_whitespace()
            .nth(1)
            .filter(|f| f.starts_with("SHA256:"))
            .ok_or_else(|| anyhow!("unexpected ssh-keygen -lf output: {text:?}"))?
            .to_string();
        if let Some(spec) = &self.opts.host_cert {
            let principals: Vec<&str> = spec.principals.iter().map(String::as_str).collect();
            crate::certs::sign(
                &spec.ca_key,
                &key.with_extension("pub"),
                true,
                &principals,
                &spec.validity,
                &self.dir_path.join("hostkey_ed25519-cert.pub"),
            )
            .context("signing the host certificate")?;
        }
        if self.opts.server == ServerKind::Dropbear {
            crate::dropbear::convert_host_key(&key, &self.dropbear_host_key_path())?;
        }
        Ok(())
    }

    fn dropbear_host_key_path(&self) -> PathBuf {
        self.dir_path.join("hostkey_ed25519.dropbear")
    }

    /// The lines [`SshHostOptions`] adds, written before the defaults (sshd takes the first
    /// value of each keyword).
    fn option_lines(&self) -> String {
        let mut lines = String::new();
        let mut push = |l: &str| {
            lines.push_str(l);
            lines.push('\n');
        };
        for line in &self.opts.config_lines {
            push(line);
        }
        if self.opts.pam {
            push("UsePAM yes");
            push("KbdInteractiveAuthentication yes");
            push("PasswordAuthentication no");
        }
        if let Some(cert) = self.host_certificate_path() {
            push(&format!("HostCertificate {}", cert.display()));
        }
        if self.opts.trusted_user_ca.is_some() {
            push(&format!(
                "TrustedUserCAKeys {}",
                self.dir_path.join("trusted_user_ca.pub").display()
            ));
        }
        if let Some(chroot) = &self.chroot {
            push(&format!("ChrootDirectory {}", chroot.root().display()));
            // Read by the privileged monitor before the chroot, so the real home's file.
            push(&format!(
                "AuthorizedKeysFile {}/.ssh/authorized_keys",
                self.home.display()
            ));
        }
        lines
    }

    /// sshd's default `MaxSessions` (10), as on a real host: the worker's 8
    /// job channels and 2 side channels fill it exactly, so the tests see
    /// every session sshd refuses ("no more sessions" in [`SshHost::log`]).
    /// `REMORA_TEST_SSHD_MAX_SESSIONS` sets another value.
    fn write_config(&self, penalties: bool) -> Result<()> {
        let dir = &self.dir_path;
        if let Some(ca) = &self.opts.trusted_user_ca {
            fs::write(dir.join("trusted_user_ca.pub"), format!("{ca}\n"))?;
        }
        let mut cfg = self.option_lines();
        cfg += &format!(
            "ListenAddress {ip}:{port}\n\
             HostKey {hostkey}\n\
             PidFile {dir}/sshd.pid\n\
             UsePAM no\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication yes\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin no\n\
             AllowUsers {user}\n\
             StrictModes no\n\
             AuthorizedKeysFile .ssh/authorized_keys\n\
             MaxStartups 100:30:200\n\
             MaxSessions {max_sessions}\n\
             LogLevel VERBOSE\n\
             UseDNS no\n\
             Subsystem sftp internal-sftp\n",
            ip = self.ip,
            port = self.port,
            hostkey = self.host_key_path().display(),
            dir = dir.display(),
            user = self.user,
            max_sessions = std::env::var("REMORA_TEST_SSHD_MAX_SESSIONS")
                .ok()
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(10),
        );
        if penalties {
            // OpenSSH >= 9.8 penalises source addresses after failed auths / crashes; all our
            // clients come from loopback and auth-failure tests would lock the others out.
            cfg.push_str("PerSourcePenalties no\n");
        }
        fs::write(self.config_path(), cfg)?;
        Ok(())
    }

    /// Writes the config, asking `sshd -t` once per process whether `PerSourcePenalties` exists.
    fn prepare_config(&self) -> Result<()> {
        static PENALTIES_SUPPORTED: OnceLock<bool> = OnceLock::new();
        if let Some(&supported) = PENALTIES_SUPPORTED.get() {
            return self.write_config(supported);
        }
        self.write_config(true)?;
        let out = Command::new(SSHD)
            .arg("-t")
            .arg("-f")
            .arg(self.config_path())
            .output()
            .context("running sshd -t")?;
        if out.status.success() {
            let _ = PENALTIES_SUPPORTED.set(true);
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !stderr.contains("PerSourcePenalties") {
            bail!("sshd -t rejected the config: {}", stderr.trim());
        }
        let _ = PENALTIES_SUPPORTED.set(false);
        self.write_config(false)
    }

    fn start_on_free_port(&mut self) -> Result<()> {
        if self.opts.netns.is_some() {
            // A namespace of our own: port 22 is free.
            self.port = 22;
            return self.spawn_sshd();
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            // Racy by nature (the port is free now, sshd binds it later); a lost race shows up as
            // "Address already in use" and we pick another port.
            let probe = std::net::TcpListener::bind((self.ip.as_str(), 0))
                .with_context(|| format!("binding {} (is it a local address?)", self.ip))?;
            self.port = probe.local_addr()?.port();
            drop(probe);
            match self.spawn_sshd() {
                Err(e) if attempts < 20 && is_addr_in_use(&e) => continue,
                other => return other,
            }
        }
    }

    fn spawn_sshd(&mut self) -> Result<()> {
        let (mut cmd, ready_line) = match self.opts.server {
            ServerKind::OpenSsh => {
                self.prepare_config()?;
                let mut cmd = Command::new(SSHD);
                cmd.args(["-D", "-e", "-f"]).arg(self.config_path());
                (cmd, "Server listening on")
            }
            ServerKind::Dropbear => (
                crate::dropbear::command(
                    &self.dropbear_host_key_path(),
                    &self.ip,
                    self.port,
                    &self.dir_path.join("dropbear.pid"),
                ),
                crate::dropbear::READY_LINE,
            ),
        };
        if let Some(placement) = &self.opts.netns {
            // `ip netns exec` execs the program: the child's pid is the daemon's.
            let mut wrapped = Command::new("ip");
            wrapped
                .args(["netns", "exec", &placement.netns])
                .arg(cmd.get_program())
                .args(cmd.get_args());
            cmd = wrapped;
        }
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let offset = log.metadata()?.len() as usize;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawning sshd")?;
        self.tell_reaper(&format!("pid {}", child.id()));
        // sshd logs "Server listening on ..." right after listen(); watching for it instead of
        // connecting keeps probe connections out of the log (see `connection_count`).
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let new_log = fs::read(&log_path)
                .map(|b| String::from_utf8_lossy(&b[offset.min(b.len())..]).into_owned())
                .unwrap_or_default();
            if let Some(status) = child.try_wait()? {
                self.tell_reaper(&format!("nopid {}", child.id()));
                bail!("sshd exited during startup ({status}): {}", new_log.trim());
            }
            if new_log.contains(ready_line) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.tell_reaper(&format!("nopid {}", child.id()));
                bail!(
                    "sshd did not start listening within {START_TIMEOUT:?}: {}",
                    new_log.trim()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn cleanup(&mut self) -> Result<()> {
        let _ = self.kill();
        if let Some(file) = self.sudoers_file.take() {
            // Before userdel: a later user given the same name must not inherit the rule.
            crate::sudo::remove(&file)?;
        }
        if self.user_created {
            // Kill first and wait: userdel refuses while the user runs processes, and a process
            // surviving the user would show up under the next user given the same uid.
            let gone = wait_until(Duration::from_secs(10), || {
                let _ = Command::new("pkill")
                    .args(["-KILL", "-u", &self.user])
                    .stderr(Stdio::null())
                    .status();
                processes_of_uid(self.uid).is_empty()
            });
            if !gone {
                eprintln!(
                    "remora-testkit: processes of {} survive SIGKILL: {:?}",
                    self.user,
                    processes_of_uid(self.uid)
                );
            }
            retry_userdb(|| Ok(Command::new("userdel").args(["-r", &self.user]).output()?))
                .with_context(|| format!("userdel -r {}", self.user))?;
            self.user_created = false;
        }
        if let Some(mut chroot) = self.chroot.take() {
            if let Err(e) = chroot.remove() {
                self.chroot = Some(chroot);
                return Err(e);
            }
        }
        if let Some(dir) = self.dir.take() {
            dir.close().context("removing sshd temp dir")?;
        }
        Ok(())
    }
}

impl Drop for SshHost {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            // The reaper gets no "done" and retries the cleanup itself.
            eprintln!("remora-testkit: cleaning up ssh host {}: {e:#}", self.user);
            if let Some(reaper) = self.reaper.take() {
                reaper.clean_up_now();
            }
            return;
        }
        if let Some(reaper) = self.reaper.take() {
            reaper.done();
        }
    }
}

fn pub_ext(path: &Path) -> String {
    match path.extension() {
        Some(ext) => format!("{}.pub", ext.to_string_lossy()),
        None => "pub".to_string(),
    }
}

fn check_prerequisites(opts: &SshHostOptions) -> Result<()> {
    if opts.server == ServerKind::Dropbear {
        crate::dropbear::check_prerequisites()?;
    } else if !Path::new(SSHD).exists() {
        return crate::skip(format!(
            "{SSHD} not found (run scripts/install-deps.sh as root)"
        ));
    }
    if crate::effective_uid() != Some(0) {
        return crate::skip("SshHost needs root (useradd, sshd)");
    }
    if let Some(shell) = opts.login_shell {
        shell.ensure()?;
    }
    if opts.busybox_chroot {
        Chroot::check_prerequisites()?;
    }
    if opts.sudo.is_some() {
        crate::sudo::check_prerequisites()?;
    }
    if opts.netns.is_some() && crate::which("ip").is_none() {
        return crate::skip("ip not found: install iproute2 (scripts/install-deps.sh)");
    }
    // sshd refuses to start without its privilege separation directory; nothing creates it on
    // a machine without an init system.
    fs::create_dir_all("/run/sshd").context("creating /run/sshd")?;
    Ok(())
}

fn gid_of(user: &str) -> Result<u32> {
    let out = run(Command::new("id").args(["-g", user]))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("parsing id -g")
}

/// `(pid, cmdline)` of every live (non-zombie) process whose real uid is `uid`, from /proc.
///
/// Zombies are left out: they run nothing, and where pid 1 reaps orphans lazily (this testbed's
/// init takes about a second) sshd's exited session processes linger as zombies owned by the user.
fn processes_of_uid(uid: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // Processes exit while we look: any read error just means "not there any more".
        let Ok(status) = fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or("")
        };
        let owner = field("Uid:")
            .split_whitespace()
            .next()
            .and_then(|s| s.parse::<u32>().ok());
        if owner != Some(uid)
            || field("State:").starts_with('Z')
            || field("State:").starts_with('X')
        {
            continue;
        }
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let mut cmd = String::from_utf8_lossy(&cmdline)
            .split('\0')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if cmd.is_empty() {
            // Exiting (mm already released): report it by name.
            cmd = format!("[{}]", field("Name:"));
        }
        found.push((pid, cmd));
    }
    found
}

use crate::wait_until;

fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// useradd/userdel/chpasswd fail instead of waiting when a parallel test holds the passwd locks.
fn is_userdb_contention(out: &Output) -> bool {
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    stderr.contains("lock") || stderr.contains("try again") || stderr.contains("currently used")
}

fn retry_userdb(mut f: impl FnMut() -> Result<Output>) -> Result<()> {
    let deadline = Instant::now() + USERDB_TIMEOUT;
    loop {
        let out = f()?;
        if out.status.success() {
            return Ok(());
        }
        if !is_userdb_contention(&out) || Instant::now() > deadline {
            bail!(
                "failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is_addr_in_use(e: &anyhow::Error) -> bool {
    let msg = format!("{e:#}");
    msg.contains("Address already in use") || msg.contains("Cannot bind any address")
}
