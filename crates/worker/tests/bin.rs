//! The `remora-worker` binary itself. Having an integration test here also
//! makes Cargo build the binary into target/debug for `cargo test`, where
//! the end-to-end tests in crates/cli (kill -9, drain, memory) run it.

use std::process::Command;

#[test]
fn binary_prints_version_and_lists_its_settings() {
    let out = Command::new(env!("CARGO_BIN_EXE_remora-worker"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for env in [
        "REMORA_WORKER_CONCURRENCY",
        "REMORA_OUTPUT_CAP",
        "REMORA_KILL_GRACE",
        "REMORA_DRAIN_TIMEOUT",
        "REMORA_SSH_CONNECT_TIMEOUT",
    ] {
        assert!(help.contains(env), "--help lacks {env}: {help}");
    }
}

/// Issue 14 item 9: a worker never talks to a queue beyond loopback without a token.
#[test]
fn binary_refuses_a_non_loopback_queue_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    for (addr, token) in [("10.9.8.7:9000", None), ("netqueue:9000", Some(""))] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_remora-worker"));
        cmd.env("REMORA_QUEUE_ADDR", addr)
            .env("REMORA_DATA_DIR", dir.path())
            .env_remove("REMORA_DATABASE_URL")
            .env_remove("REMORA_QUEUE_TOKEN");
        if let Some(t) = token {
            cmd.env("REMORA_QUEUE_TOKEN", t);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{addr}: {stderr}");
        assert!(
            stderr.contains("REMORA_QUEUE_TOKEN") && stderr.contains(addr),
            "{addr}: {stderr}"
        );
        // Refused before anything else: no database was created.
        assert!(!dir.path().join("remora.db").exists());
    }
}

/// Issue 15 item 8: a queue address list is checked entry by entry before anything starts: a bad
/// entry is named, and every address follows the token rule (a standby beyond loopback too).
#[test]
fn binary_checks_every_queue_address_of_the_list() {
    let dir = tempfile::tempdir().unwrap();
    for (list, says) in [
        ("127.0.0.1:9000,,127.0.0.1:9001", "empty entry"),
        ("127.0.0.1:9000,standby", "\"standby\" is not host:port"),
        ("127.0.0.1:9000,127.0.0.1:9000", "listed twice"),
        (
            "127.0.0.1:9000,10.9.8.7:9000",
            "10.9.8.7:9000 is not a loopback address",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_remora-worker"))
            .env("REMORA_QUEUE_ADDR", list)
            .env("REMORA_DATA_DIR", dir.path())
            .env_remove("REMORA_DATABASE_URL")
            .env_remove("REMORA_QUEUE_TOKEN")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{list}: {stderr}");
        assert!(stderr.contains(says), "{list}: {stderr}");
        assert!(!dir.path().join("remora.db").exists());
    }
}

/// An unknown `REMORA_LOG_FORMAT` is an error naming the accepted values (it used to mean
/// text, silently); the cap on bcrypt rounds is a setting of its own.
#[test]
fn an_unknown_log_format_is_refused_and_the_kdf_cap_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_remora-worker"))
        .env("REMORA_LOG_FORMAT", "xml")
        .env("REMORA_DATA_DIR", dir.path())
        .env_remove("REMORA_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for word in ["xml", "text", "json"] {
        assert!(stderr.contains(word), "{word} missing: {stderr}");
    }
    let help = Command::new(env!("CARGO_BIN_EXE_remora-worker"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("REMORA_MAX_KDF_ROUNDS"), "{help}");
}
