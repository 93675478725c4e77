//! `remora servers host-keys scan|accept` against real sshd: the states new, matches, mismatch
//! and unreachable; `--tag`; a declined or unanswered prompt pins nothing; `--all-new` never
//! accepts a mismatch; a named mismatch is accepted with `--yes`, an unreachable one is not.

use crate::cli::remora;
use crate::stack::Stack;
use remora_testkit::require;
use remora_testkit::sshd::SshHost;
use serde_json::{json, Value};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn state_of(scan: &Value, name: &str) -> String {
    scan["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {scan}"))["state"]
        .as_str()
        .unwrap()
        .to_string()
}

const WRONG: &str = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scan_and_reviewed_accept_from_the_cli() {
    let h1 = require!(SshHost::start());
    let h2 = require!(SshHost::start());
    let stack = Stack::new().await;
    stack.add_server("web1", &h1).await; // new
    stack.add_server("web2", &h2).await; // mismatch (pinned to a wrong key below)
    stack.add_server_raw("web3").await; // unreachable (port 1)
    stack.add_server("web4", &h1).await; // matches (pinned to h1's key below)
    for n in ["web1", "web2"] {
        let (st, v) = stack
            .call(
                reqwest::Method::PUT,
                &format!("/api/v1/servers/{n}"),
                Some(json!({ "tags": ["lab"] })),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }
    let (st, v) = stack
        .post(
            "/api/v1/servers/host-keys/accept",
            json!({ "keys": [{ "server": "web2", "fingerprint": WRONG },
                { "server": "web4", "fingerprint": h1.host_key_fingerprint() }] }),
        )
        .await;
    assert_eq!(st, 200, "{v}");

    // --tag: only the tagged servers, each with its state, as JSON.
    let o = remora(
        &stack,
        &["servers", "host-keys", "scan", "--tag", "lab", "-o", "json"],
        None,
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let scan: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(scan["keys"].as_array().unwrap().len(), 2, "{scan}");
    assert_eq!(state_of(&scan, "web1"), "new");
    assert_eq!(state_of(&scan, "web2"), "mismatch");
    let web1 = scan["keys"][0].clone();
    assert_eq!(
        web1["presented"],
        h1.host_key_fingerprint().as_str(),
        "{scan}"
    );

    // Named servers, as a table: every state.
    let o = remora(
        &stack,
        &[
            "servers",
            "host-keys",
            "scan",
            "web1",
            "web2",
            "web3",
            "web4",
        ],
        None,
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for w in [
        "new",
        "mismatch",
        "unreachable",
        "matches",
        &h2.host_key_fingerprint(),
        WRONG,
    ] {
        assert!(out.contains(w), "{w} missing from:\n{out}");
    }
    assert!(
        text(&o.stderr).contains("4 scanned: 1 new, 1 matches, 1 mismatch, 1 unreachable"),
        "{}",
        text(&o.stderr)
    );
    let o = remora(
        &stack,
        &["servers", "host-keys", "scan", "--tag", "nope"],
        None,
    )
    .await;
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("nope"), "{}", text(&o.stderr));

    // No answer, or `n`: nothing pinned.
    for stdin in [None, Some("n\n")] {
        let o = remora(
            &stack,
            &["servers", "host-keys", "accept", "--all-new"],
            stdin,
        )
        .await;
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("nothing accepted"),
            "{}",
            text(&o.stderr)
        );
        assert!(stack.get("/api/v1/servers/web1").await["host_key_fingerprint"].is_null());
    }
    // `y`: --all-new pins the new one only; the mismatch stays.
    let o = remora(
        &stack,
        &["servers", "host-keys", "accept", "--all-new"],
        Some("y\n"),
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("1 host keys accepted"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        stack.get("/api/v1/servers/web1").await["host_key_fingerprint"],
        h1.host_key_fingerprint().as_str()
    );
    assert_eq!(
        stack.get("/api/v1/servers/web2").await["host_key_fingerprint"],
        WRONG
    );

    // Named with --yes: the mismatch is accepted, the unreachable one reported (exit 1).
    let o = remora(
        &stack,
        &[
            "servers",
            "host-keys",
            "accept",
            "--yes",
            "web2",
            "web3",
            "-o",
            "json",
        ],
        None,
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let res: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(res["accepted"], 1, "{res}");
    assert_eq!(res["skipped"][0]["name"], "web3", "{res}");
    assert_eq!(res["skipped"][0]["state"], "unreachable", "{res}");
    let web2 = stack.get("/api/v1/servers/web2").await;
    assert_eq!(
        web2["host_key_fingerprint"],
        h2.host_key_fingerprint().as_str()
    );
    let audit = stack.get("/api/v1/audit").await.to_string();
    let entry = format!("{WRONG} -> {} (bulk review)", h2.host_key_fingerprint());
    assert!(audit.contains(&entry), "{entry} not in {audit}");

    // Now all pinned and matching: exit 0, nothing left to accept.
    let o = remora(
        &stack,
        &["servers", "host-keys", "scan", "web1", "web2", "web4"],
        None,
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = remora(
        &stack,
        &["servers", "host-keys", "accept", "--all-new", "--yes"],
        None,
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("nothing to accept"),
        "{}",
        text(&o.stderr)
    );
}
