//! Credentials and trusted CAs through the whole stack (API + worker + real sshd): one
//! credential rotated under 100 servers, and host certificates from a trusted CA.

use crate::stack::Stack;
use remora_testkit::certs::{Ca, Validity};
use remora_testkit::require;
use remora_testkit::sshd::{KeyKind, SshHost, SshHostOptions};
use serde_json::{json, Value};
use std::time::Duration;

fn public_fingerprint(key_path: &std::path::Path) -> String {
    let out = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key_path.with_extension("pub"))
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

async fn run_all(stack: &Stack, ids: &[String]) {
    let mut jobs = Vec::new();
    for id in ids {
        jobs.push(stack.submit(id, "true").await);
    }
    for j in jobs {
        let job = stack.wait_final(&j, Duration::from_secs(120)).await;
        assert_eq!(job["status"], "completed", "{job}");
    }
}

/// The sealed private key of a credential, read straight from the database.
async fn sealed_key(db_url: &str, id: &str) -> Vec<u8> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(db_url)
        .await
        .unwrap();
    let row: (Vec<u8>,) = sqlx::query_as("SELECT private_key_enc FROM credentials WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    row.0
}

/// Every byte of the SQLite database (main file and WAL, after a checkpoint).
async fn sqlite_bytes(stack: &Stack) -> Vec<u8> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&stack.db_url)
        .await
        .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let mut all = Vec::new();
    for e in std::fs::read_dir(stack.dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().contains("remora.db") {
            all.extend(std::fs::read(&p).unwrap_or_default());
        }
    }
    all
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread")]
async fn rotating_a_credential_used_by_100_servers() {
    let mut host = require!(SshHost::start());
    let new_key_path = host.add_key_file(KeyKind::Ed25519, None, false).unwrap();
    let new_key = std::fs::read_to_string(&new_key_path).unwrap();
    let old_fp = public_fingerprint(host.private_key_path());
    let new_fp = public_fingerprint(&new_key_path);
    let stack = Stack::new().await;

    let (st, c) = stack
        .post(
            "/api/v1/credentials",
            json!({ "name": "deploy", "private_key": host.private_key(), "sudo_password": "s3cret-sudo" }),
        )
        .await;
    assert_eq!(st, 201, "{c}");
    let cid = c["id"].as_str().unwrap().to_string();
    assert_eq!(c["fingerprint"], old_fp.as_str(), "{c}");
    assert_eq!(c["has_sudo_password"], true);
    let body = c.to_string();
    assert!(
        !body.contains("PRIVATE KEY") && !body.contains("s3cret-sudo"),
        "{body}"
    );

    let mut ids = Vec::new();
    for i in 0..100 {
        // by name for half of them, by id for the others
        let cred = if i % 2 == 0 { "deploy" } else { cid.as_str() };
        let (st, v) = stack
            .post(
                "/api/v1/servers",
                json!({ "name": format!("h{i:03}"), "hostname": host.host(), "port": host.port(),
                        "user": host.user(), "credential_id": cred }),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        assert_eq!(v["credential_id"], cid.as_str());
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let c = stack.get("/api/v1/credentials/deploy").await;
    assert_eq!(c["servers"], 100, "{c}");
    run_all(&stack, &ids).await;
    let accepted = |fp: &str| {
        host.log()
            .lines()
            .filter(|l| l.contains("Accepted publickey") && l.contains(fp))
            .count()
    };
    assert!(accepted(&old_fp) >= 1);
    assert_eq!(accepted(&new_fp), 0);

    // in use: 409 naming the servers
    let (st, v) = stack
        .call(reqwest::Method::DELETE, "/api/v1/credentials/deploy", None)
        .await;
    assert_eq!(st, 409, "{v}");
    assert!(
        v.to_string().contains("100 server(s)") && v.to_string().contains("h042"),
        "{v}"
    );

    let old_sealed = sealed_key(&stack.db_url, &cid).await;
    let (st, v) = stack
        .call(
            reqwest::Method::PUT,
            "/api/v1/credentials/deploy",
            Some(json!({ "private_key": new_key })),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["version"], 2);
    assert_eq!(v["fingerprint"], new_fp.as_str());
    assert_eq!(
        v["has_sudo_password"], true,
        "a rotation keeps what it does not change"
    );

    // The old key no longer logs in at all: every next job must use the new one, on a new
    // connection (the pool never leases a connection made with the old secret).
    let auth = host.home().join(".ssh/authorized_keys");
    let new_pub = std::fs::read_to_string(new_key_path.with_extension("pub")).unwrap();
    std::fs::write(&auth, new_pub).unwrap();
    run_all(&stack, &ids).await;
    assert!(
        accepted(&new_fp) >= 100,
        "every server reconnected with the new key: {} logins",
        accepted(&new_fp)
    );

    // The old key and its ciphertext are gone from the database.
    let now_sealed = sealed_key(&stack.db_url, &cid).await;
    assert_ne!(old_sealed, now_sealed);
    if stack.db_url.starts_with("sqlite") {
        let bytes = sqlite_bytes(&stack).await;
        assert!(
            !contains(&bytes, &old_sealed),
            "old ciphertext still in the SQLite file"
        );
        assert!(
            contains(&bytes, &now_sealed),
            "the scan sees the new ciphertext"
        );
        let old_body = host
            .private_key()
            .lines()
            .nth(1)
            .unwrap()
            .as_bytes()
            .to_vec();
        assert!(!contains(&bytes, &old_body), "old key bytes in the file");
    }

    // Audited, never with the secret.
    let audit = stack.get("/api/v1/audit?limit=500").await.to_string();
    assert!(
        audit.contains("credential.rotate") && audit.contains("credential.create"),
        "{audit}"
    );
    assert!(!audit.contains("PRIVATE KEY"));
}

async fn job_result(stack: &Stack, server: &str) -> Value {
    let id = stack.submit(server, "true").await;
    stack.wait_final(&id, Duration::from_secs(30)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn host_certificates_from_a_trusted_ca() {
    let ca = require!(Ca::new());
    let other = Ca::new().unwrap();
    let good = require!(SshHostOptions::new()
        .host_certificate(&ca, &["127.0.0.1"], Validity::Valid)
        .start());
    let foreign = SshHostOptions::new()
        .ip("127.0.0.2")
        .host_certificate(&other, &["127.0.0.2"], Validity::Valid)
        .start()
        .unwrap();
    let wrong_name = SshHostOptions::new()
        .ip("127.0.0.3")
        .host_certificate(&ca, &["db.example.com"], Validity::Valid)
        .start()
        .unwrap();
    let expired = SshHostOptions::new()
        .ip("127.0.0.4")
        .host_certificate(&ca, &["127.0.0.4"], Validity::Expired)
        .start()
        .unwrap();
    let stack = Stack::new().await;

    // validation
    let (st, v) = stack
        .post(
            "/api/v1/trusted-cas",
            json!({ "name": "corp", "public_key": "ssh-ed25519 nope", "patterns": ["*"] }),
        )
        .await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["error"]["field"], "public_key");
    let (st, v) = stack
        .post(
            "/api/v1/trusted-cas",
            json!({ "name": "corp", "public_key": ca.public_key(), "patterns": ["!127.0.0.9"] }),
        )
        .await;
    assert_eq!(st, 422, "{v}");
    let (st, v) = stack
        .post("/api/v1/trusted-cas", json!({ "name": "corp", "public_key": ca.public_key(), "patterns": ["127.0.0.*", "!127.0.0.9"] }))
        .await;
    assert_eq!(st, 201, "{v}");
    let ca_id = v["id"].as_str().unwrap().to_string();
    assert!(
        v["fingerprint"].as_str().unwrap().starts_with("SHA256:"),
        "{v}"
    );

    let mut ids = Vec::new();
    for (name, h) in [
        ("good", &good),
        ("foreign", &foreign),
        ("wrong-name", &wrong_name),
        ("expired", &expired),
    ] {
        ids.push(stack.add_server(name, h).await);
    }
    // A pin that does not match: the CA's certificate stands in for it.
    stack
        .store
        .set_host_key(&ids[0], Some("SHA256:not-this-one"))
        .await
        .unwrap();
    let j = job_result(&stack, &ids[0]).await;
    assert_eq!(j["status"], "completed", "{j}");
    for (i, why) in [
        (1, "not a CA trusted"),
        (2, "db.example.com"),
        (3, "expired"),
    ] {
        let j = job_result(&stack, &ids[i]).await;
        assert_eq!(j["status"], "failed", "{j}");
        assert_eq!(j["error_code"], "host_key_untrusted", "{j}");
        assert!(
            j["error"].as_str().unwrap_or("").contains(why),
            "{why}: {j}"
        );
    }

    // Removing the CA counts from the next connection: the wrong pin now fails.
    let (st, v) = stack
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/trusted-cas/{ca_id}"),
            None,
        )
        .await;
    assert_eq!(st, 204, "{v}");
    let j = job_result(&stack, &ids[0]).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert_eq!(j["error_code"], "host_key_mismatch", "{j}");
    let audit = stack.get("/api/v1/audit?limit=100").await.to_string();
    assert!(
        audit.contains("trusted_ca.create") && audit.contains("trusted_ca.delete"),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn user_certificate_through_a_credential() {
    let ca = require!(Ca::new());
    let mut host = require!(SshHostOptions::new().trusted_user_ca(&ca).start());
    let good = host.user_certificate(&ca, Validity::Valid).unwrap();
    let expired = host.user_certificate(&ca, Validity::Expired).unwrap();
    let stack = Stack::new().await;
    // a certificate for another key is refused
    let (st, v) = stack
        .post("/api/v1/credentials", json!({ "name": "c", "private_key": good.private_key, "certificate": expired.certificate }))
        .await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["error"]["field"], "certificate");
    let (st, v) = stack
        .post("/api/v1/credentials", json!({ "name": "c", "private_key": good.private_key, "certificate": good.certificate }))
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["certificate"]["status"], "valid", "{v}");
    assert_eq!(v["certificate"]["principals"][0], host.user());
    let (st, s) = stack
        .post("/api/v1/servers", json!({ "name": "h", "hostname": host.host(), "port": host.port(), "user": host.user(), "credential_id": "c" }))
        .await;
    assert_eq!(st, 201, "{s}");
    let sid = s["id"].as_str().unwrap().to_string();
    let j = job_result(&stack, &sid).await;
    assert_eq!(j["status"], "completed", "{j}");
    // rotate to the expired one: the job fails before connecting
    let (st, v) = stack
        .call(
            reqwest::Method::PUT,
            "/api/v1/credentials/c",
            Some(json!({ "private_key": expired.private_key, "certificate": expired.certificate })),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["certificate"]["status"], "expired", "{v}");
    let before = host.connection_count();
    let j = job_result(&stack, &sid).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert_eq!(j["error_code"], "bad_certificate", "{j}");
    assert!(j["error"].as_str().unwrap().contains("expired"), "{j}");
    assert_eq!(
        host.connection_count(),
        before,
        "no connection with an expired certificate"
    );
}

/// `remora credentials add|list|show|rotate|rm`, `servers add --credential`, `trusted-cas`.
#[tokio::test(flavor = "multi_thread")]
async fn cli_commands() {
    use crate::cli::remora;
    let mut host = require!(SshHost::start());
    let new_key = host.add_key_file(KeyKind::Ed25519, None, false).unwrap();
    let stack = Stack::new().await;
    let key = host.private_key_path().to_str().unwrap().to_string();
    let o = remora(
        &stack,
        &[
            "credentials",
            "add",
            "deploy",
            "--key-file",
            &key,
            "--sudo-password-file",
            "-",
        ],
        Some("sudo-pw\n"),
    )
    .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let port = host.port().to_string();
    let o = remora(
        &stack,
        &[
            "servers",
            "add",
            "web1",
            "--host",
            &host.host(),
            "--port",
            &port,
            "--user",
            host.user(),
            "--credential",
            "deploy",
        ],
        None,
    )
    .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = remora(&stack, &["credentials", "list"], None).await;
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out.contains("deploy") && out.contains("SHA256:") && !out.contains("sudo-pw"),
        "{out}"
    );
    let o = remora(&stack, &["credentials", "rm", "deploy"], None).await;
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("web1"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let nk = new_key.to_str().unwrap().to_string();
    let o = remora(
        &stack,
        &[
            "-o",
            "json",
            "credentials",
            "rotate",
            "deploy",
            "--key-file",
            &nk,
        ],
        None,
    )
    .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version"], 2);
    let o = remora(&stack, &["credentials", "show", "deploy"], None).await;
    assert!(String::from_utf8_lossy(&o.stdout).contains("servers: web1"));
    let id = stack.get("/api/v1/servers/web1").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let j = job_result(&stack, &id).await;
    assert_eq!(j["status"], "completed", "{j}");

    let ca = Ca::new().unwrap();
    let ca_file = stack.dir.path().join("ca.pub");
    std::fs::write(&ca_file, ca.public_key()).unwrap();
    let o = remora(
        &stack,
        &[
            "trusted-cas",
            "add",
            "corp",
            "--key-file",
            ca_file.to_str().unwrap(),
            "--pattern",
            "*.corp",
            "--pattern",
            "!bad.corp",
        ],
        None,
    )
    .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = remora(&stack, &["trusted-cas", "list"], None).await;
    assert!(String::from_utf8_lossy(&o.stdout).contains("!bad.corp"));
    let o = remora(&stack, &["trusted-cas", "rm", "corp"], None).await;
    assert!(o.status.success());
    assert_eq!(stack.get("/api/v1/trusted-cas").await["total"], 0);
}
