//! A real SMTP server on loopback for email tests: `python3 -m aiosmtpd` (PyPI, installed by scripts/install-deps.sh) printing every message it receives.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct SmtpServer {
    pub port: u16,
    child: Child,
    received: Arc<Mutex<Vec<u8>>>,
}

impl SmtpServer {
    /// Start aiosmtpd on a free 127.0.0.1 port and wait until it accepts
    /// connections. Skips (see the crate docs) when aiosmtpd is not installed.
    pub fn start() -> anyhow::Result<SmtpServer> {
        let have = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !have {
            return crate::skip("aiosmtpd is not installed (scripts/install-deps.sh as root, or python3 -m pip install aiosmtpd)");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "aiosmtpd",
                "-n",
                "-c",
                "aiosmtpd.handlers.Debugging",
                "-l",
            ])
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let mut out = child.stdout.take().expect("piped stdout");
        let sink = received.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("smtp output lock")
                    .extend_from_slice(&buf[..n]);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut server = SmtpServer {
            port,
            child,
            received,
        };
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                anyhow::bail!("aiosmtpd did not listen on 127.0.0.1:{port} within 20 s");
            }
            if let Some(status) = server.child.try_wait()? {
                anyhow::bail!("aiosmtpd exited: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// Everything the server printed so far (the messages it received, headers and body).
    pub fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().expect("smtp output lock")).into_owned()
    }

    /// Wait until the received text contains `needle`, or `timeout` passes.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.received().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
