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
