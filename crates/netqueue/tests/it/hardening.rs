//! Hostile clients and failing disks: the pre-HELLO frame limit, the handshake timeout with the
//! connection cap, the refusal to serve beyond loopback without a token, bad limits refused at
//! start naming their variable, the lease limit applied, and the log writer
//! recovering from a full disk.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use remora_netqueue::protocol::Reply;
use remora_netqueue::{ErrorCode, Push, PushOutcome, ServerConfig};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::malformed::{closed, error_code, hello, read_reply};
use crate::support::{eventually, TestServer};

#[tokio::test]
async fn a_big_frame_before_hello_is_refused_but_allowed_after() {
    let srv = TestServer::start(ServerConfig {
        max_hello_frame: 4096,
        ..ServerConfig::default()
    })
    .await;

    // A length prefix claiming 1 MiB: refused from the 4 bytes alone, nothing is reserved.
    let mut s = TcpStream::connect(&srv.addr).await.unwrap();
    s.write_all(&(1024u32 * 1024).to_be_bytes()).await.unwrap();
    let (_, code) = error_code(read_reply(&mut s).await);
    assert_eq!(code, ErrorCode::FrameTooLarge);
    assert!(closed(&mut s).await);

    // 4097 bytes is one too many before HELLO.
    let mut s = TcpStream::connect(&srv.addr).await.unwrap();
    s.write_all(&4097u32.to_be_bytes()).await.unwrap();
    assert_eq!(
        error_code(read_reply(&mut s).await).1,
        ErrorCode::FrameTooLarge
    );

    // After HELLO the normal limit (1 MiB) applies: a 200 KiB push goes through.
    let c = srv.client().await;
    let out = c
        .push(Push::new("q", "big", Bytes::from(vec![7u8; 200 * 1024])))
        .await
        .unwrap();
    assert_eq!(out, PushOutcome::Queued);
    srv.stop().await;
}

#[tokio::test]
async fn silent_connections_time_out_and_the_cap_lets_a_client_in_afterwards() {
    let srv = TestServer::start(ServerConfig {
        max_connections: 4,
        handshake_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    })
    .await;
    // Four slow-loris connections take every slot and never say HELLO.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(&srv.addr).await.unwrap());
    }
    // A fifth connection waits in the backlog: its HELLO is answered only once a slot frees.
    let mut late = TcpStream::connect(&srv.addr).await.unwrap();
    late.write_all(&hello("")).await.unwrap();
    let started = std::time::Instant::now();
    for s in &mut silent {
        assert!(closed(s).await, "a silent connection is closed");
    }
    assert!(matches!(
        read_reply(&mut late).await,
        Some((1, Reply::HelloOk { .. }))
    ));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(5),
        "the fifth connection was served after the handshake timeout, not before: {waited:?}"
    );
    let stats = srv.client().await.stats().await.unwrap();
    assert!(stats.server.connections <= 4, "{:?}", stats.server);
    srv.stop().await;
}

fn binary(addr: &str, token: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_remora-netqueue"));
    cmd.args(["--addr", addr, "--in-memory"])
        .env_remove("REMORA_QUEUE_TOKEN")
        .env_remove("REMORA_QUEUE_ADDR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(t) = token {
        cmd.env("REMORA_QUEUE_TOKEN", t);
    }
    cmd
}

#[test]
fn the_binary_refuses_a_non_loopback_address_without_a_token() {
    for (addr, token) in [
        ("0.0.0.0:0", None),
        ("[::]:0", None),
        ("0.0.0.0:0", Some("")),
    ] {
        // A refusing server exits by itself; one that wrongly starts would hang the test run.
        let out = binary(addr, token).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("binding") {
            continue; // no IPv6 on this host
        }
        assert!(!out.status.success(), "{addr}: {stderr}");
        assert!(
            stderr.contains("REMORA_QUEUE_TOKEN") && stderr.contains("not a loopback address"),
            "{addr}: {stderr}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"));
    }
    // With a token, or on loopback, it starts: it prints its address, then is stopped.
    for (addr, token) in [("0.0.0.0:0", Some("s3cret")), ("127.0.0.1:0", None)] {
        use std::io::BufRead;
        let mut child = binary(addr, token).spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        child.kill().unwrap();
        let _ = child.wait();
        assert!(line.starts_with("listening on "), "{addr}: {line:?}");
    }
}

#[test]
fn the_binary_refuses_bad_limits_naming_the_variable() {
    for (var, value, flag) in [
        ("REMORA_QUEUE_MAX_LEASE_MS", "10", "--max-lease-ms"),
        ("REMORA_QUEUE_MAX_LEASE_MS", "1h", "--max-lease-ms"),
        ("REMORA_QUEUE_MAX_INFLIGHT", "0", "--max-inflight"),
        ("REMORA_QUEUE_SUBSCRIBER_BUFFER", "0", "--subscriber-buffer"),
        (
            "REMORA_QUEUE_SUBSCRIBER_BUFFER",
            "lots",
            "--subscriber-buffer",
        ),
        ("REMORA_QUEUE_MAX_DEAD_LETTERS", "-1", "--max-dead-letters"),
    ] {
        // A refusing server exits by itself; one that wrongly starts would hang the test run.
        let out = binary("127.0.0.1:0", None)
            .env(var, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid value '{value}'"))
                && stderr.contains(flag)
                && stderr.contains(&format!("environment variable {var}")),
            "{var}={value}: {stderr}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"));
    }
}

#[tokio::test]
async fn the_binary_applies_its_lease_limit() {
    use std::io::BufRead;
    let mut child = binary("127.0.0.1:0", None)
        .env("REMORA_QUEUE_MAX_LEASE_MS", "2000")
        .env("REMORA_QUEUE_MAX_INFLIGHT", "8")
        .env("REMORA_QUEUE_SUBSCRIBER_BUFFER", "16")
        .env("REMORA_QUEUE_MAX_DEAD_LETTERS", "0")
        .spawn()
        .unwrap();
    // Killed however the test ends.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let _child = Kill(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_string();
    let c = remora_netqueue::Client::connect(&addr, None).await.unwrap();
    let within = c
        .reserve(&["q"], 1, Duration::ZERO, Duration::from_millis(2000))
        .await;
    assert!(within.is_ok(), "{within:?}");
    let over = c
        .reserve(&["q"], 1, Duration::ZERO, Duration::from_millis(2001))
        .await
        .unwrap_err();
    assert_eq!(over.code(), Some(&ErrorCode::BadRequest), "{over}");
    assert!(over.to_string().contains("maximum of 2000 ms"), "{over}");
}

/// A tmpfs of a fixed size, unmounted on drop: a disk that really fills up.
struct SmallDisk {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: u64) -> SmallDisk {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("disk");
        std::fs::create_dir(&dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("running mount");
        assert!(
            st.success(),
            "mounting a tmpfs needs root (the test machines run as root)"
        );
        SmallDisk {
            dir,
            _parent: parent,
        }
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

fn disk_config(dir: &Path) -> ServerConfig {
    ServerConfig {
        data_dir: Some(dir.join("queue")),
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn the_log_writer_recovers_when_the_disk_does() {
    let disk = SmallDisk::mount(1024 * 1024);
    let srv = TestServer::start(disk_config(&disk.dir)).await;
    let c = srv.client().await;
    for i in 0..3 {
        c.push(Push::new("q", format!("before{i}"), &b"x"[..]))
            .await
            .unwrap();
    }

    let filler = disk.fill();
    // The first push that needs the disk fails; so does every later one while it is full.
    let e = c
        .push(Push::new("q", "while-full", vec![1u8; 8192]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&ErrorCode::StorageError), "{e}");
    let stats = c.stats().await.unwrap();
    assert!(stats.server.storage_failed, "{:?}", stats.server);
    let e = c
        .push(Push::new("q", "refused", &b"y"[..]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&ErrorCode::StorageError), "{e}");
    // Other changes keep working in memory, and no journal piles up while the disk is full.
    let ds = c
        .reserve(&["q"], 1, Duration::ZERO, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(ds.len(), 1);
    c.ack("q", &ds[0].id, ds[0].lease_id).await.unwrap();
    // A retry round of the writer may hold the ack's records for a moment; a failed round drops
    // them again (the snapshot covers them), so none stay pending while the disk is full.
    eventually(Duration::from_secs(10), "no records pending", || async {
        let s = c.stats().await.unwrap().server;
        assert!(s.storage_failed, "{s:?}");
        s.pending_records == 0
    })
    .await;

    // Space comes back: the writer notices by itself and pushes are durable again.
    std::fs::remove_file(&filler).unwrap();
    eventually(Duration::from_secs(10), "pushes succeed again", || async {
        c.push(Push::new("q", "after", &b"z"[..])).await.is_ok()
    })
    .await;
    assert!(!c.stats().await.unwrap().server.storage_failed);
    srv.stop().await;

    // What survives a restart is exactly the in-memory state: the acked message is gone, the
    // refused push was never kept, the push after recovery is there.
    let srv = TestServer::start(disk_config(&disk.dir)).await;
    let c = srv.client().await;
    let ds = c
        .reserve(&["q"], 100, Duration::ZERO, Duration::from_secs(60))
        .await
        .unwrap();
    let mut ids: Vec<_> = ds.iter().map(|d| d.id.clone()).collect();
    ids.sort();
    assert!(!ids.contains(&"refused".to_owned()), "{ids:?}");
    assert!(ids.contains(&"after".to_owned()), "{ids:?}");
    assert_eq!(
        ids.iter().filter(|i| i.starts_with("before")).count(),
        2,
        "one of the three was acked while the disk was full: {ids:?}"
    );
    srv.stop().await;
}
