//! Issue 14 item 2: an encrypted OpenSSH key asking for too many bcrypt
//! rounds is refused at once where the worker loads it (connect), the cap is
//! configurable, and parsing runs off the async runtime under a time limit.

use remora_ssh::{Connection, KeyLimits, SshError};
use remora_testkit::evil_keys::{self, PASSPHRASE};
use remora_testkit::require;
use remora_testkit::sshd::SshHost;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_key_with_2_pow_31_rounds_fails_at_connect_at_once() {
    let host = require!(SshHost::start());
    let evil = require!(evil_keys::key_with_rounds(1 << 31));
    let mut t = crate::target(&host);
    t.creds.private_key = Some(evil);
    t.creds.passphrase = Some(PASSPHRASE.into());
    let started = Instant::now();
    let e = Connection::connect(&t, &crate::cfg()).await.err().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "{e}");
    assert!(matches!(e, SshError::BadKey(_)), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("2147483648 bcrypt rounds"), "{msg}");
    assert!(msg.contains("REMORA_MAX_KDF_ROUNDS"), "{msg}");
}

#[tokio::test]
async fn the_rounds_cap_is_configurable() {
    let key = require!(evil_keys::encrypted_key());
    let under = |max_kdf_rounds| KeyLimits {
        max_kdf_rounds,
        ..Default::default()
    };
    assert!(
        remora_ssh::parse_private_key_async(&key, Some(PASSPHRASE), under(16))
            .await
            .is_ok()
    );
    let e = remora_ssh::parse_private_key_async(&key, Some(PASSPHRASE), under(8))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("16 bcrypt rounds; at most 8"), "{e}");
}

/// On a single-threaded runtime: while a key that takes forever is parsed,
/// other tasks keep running, and the parse is abandoned at its time limit.
/// (The runtime is shut down without waiting for the abandoned thread, which
/// ends with the test process.)
#[test]
fn parsing_runs_off_the_runtime_and_stops_at_its_time_limit() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(parse_with_a_time_limit());
    rt.shutdown_background();
}

async fn parse_with_a_time_limit() {
    let evil = require!(evil_keys::key_with_rounds(1 << 31));
    let limits = KeyLimits {
        max_kdf_rounds: u32::MAX,
        parse_timeout: Duration::from_millis(500),
    };
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let t2 = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            t2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let started = Instant::now();
    let e = remora_ssh::parse_private_key_async(&evil, Some(PASSPHRASE), limits)
        .await
        .unwrap_err();
    let took = started.elapsed();
    ticker.abort();
    assert!(e.to_string().contains("took longer than"), "{e}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let n = ticks.load(std::sync::atomic::Ordering::Relaxed);
    assert!(n >= 10, "the runtime was blocked: {n} ticks in {took:?}");
}
