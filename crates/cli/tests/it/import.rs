//! `remora servers import` through the whole stack against real sshd: a dry run writes nothing,
//! a CSV import creates, a hashed `known_hosts` line pins the key so the first job runs with no
//! trust-on-first-use pin, a wrong pin fails the job and records the presented key, and
//! `--jump` plus the 409 on deleting a jump host.

use crate::cli::remora;
use crate::stack::Stack;
use remora_testkit::require;
use remora_testkit::sshd::SshHost;
use std::time::Duration;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const OTHER_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO0HVjb439FgT8IDrJ59YL2139SlNaelLBCESk5t/+iJ";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn known_hosts_pre_pins_so_the_first_job_needs_no_tofu() {
    let h1 = require!(SshHost::start());
    let h2 = require!(SshHost::start());
    let stack = Stack::new().await;
    let dir = stack.dir.path();
    let csv = dir.join("fleet.csv");
    std::fs::write(
        &csv,
        format!(
            "# the fleet\nname,hostname,port,username,tags\nweb1,{},{},{},web;lab\n",
            h1.host(),
            h1.port(),
            h1.user()
        ),
    )
    .unwrap();
    let key = h1.private_key_path().to_str().unwrap().to_string();
    let csv_s = csv.to_str().unwrap();

    let o = remora(
        &stack,
        &["servers", "import", csv_s, "--key-file", &key, "--dry-run"],
        None,
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("create"), "{}", text(&o.stdout));
    assert!(text(&o.stderr).contains("dry run"), "{}", text(&o.stderr));
    let list = stack.get("/api/v1/servers").await;
    assert_eq!(list["total"], 0, "a dry run wrote: {list}");

    let o = remora(
        &stack,
        &["servers", "import", csv_s, "--key-file", &key],
        None,
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("1 created"), "{}", text(&o.stderr));
    let web1 = stack.get("/api/v1/servers/web1").await;
    assert_eq!(web1["tags"], serde_json::json!(["lab", "web"]));
    assert!(web1["host_key_fingerprint"].is_null());

    // A bad line: exit 1, the line named, nothing applied.
    let bad = dir.join("bad.csv");
    std::fs::write(
        &bad,
        "name,hostname,port\nok1,10.0.0.1,22\nbad1,10.0.0.2,0\n",
    )
    .unwrap();
    let o = remora(
        &stack,
        &[
            "servers",
            "import",
            bad.to_str().unwrap(),
            "--user",
            "x",
            "--key-file",
            &key,
        ],
        None,
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("bad.csv:3: error"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(stack.get("/api/v1/servers").await["total"], 1);

    // known_hosts (hashed, as HashKnownHosts writes it) pins web1 before any connection.
    let kh = dir.join("known_hosts");
    std::fs::write(
        &kh,
        format!(
            "{}\n[{}]:{} {OTHER_KEY}\n",
            h1.known_hosts_line_hashed().unwrap(),
            h2.host(),
            h2.port()
        ),
    )
    .unwrap();
    let o = remora(&stack, &["servers", "import", kh.to_str().unwrap()], None).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let web1 = stack.get("/api/v1/servers/web1").await;
    assert_eq!(
        web1["host_key_fingerprint"],
        h1.host_key_fingerprint().as_str()
    );
    let first_seen = web1["host_key_first_seen_at"].clone();
    assert!(first_seen.is_string(), "{web1}");

    let id = stack.submit(web1["id"].as_str().unwrap(), "id -un").await;
    let job = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let out = stack.get(&format!("/api/v1/jobs/{id}/stdout")).await;
    assert!(out.to_string().contains(h1.user()), "{out}");
    // No trust-on-first-use happened: the pin is the file's, first seen at the import.
    let web1 = stack.get("/api/v1/servers/web1").await;
    assert_eq!(
        web1["host_key_fingerprint"],
        h1.host_key_fingerprint().as_str()
    );
    assert_eq!(web1["host_key_first_seen_at"], first_seen);
    assert!(web1["host_key_presented"].is_null());

    // A server pre-pinned to a wrong key: the job fails and the presented key is recorded.
    let (st, v) = stack
        .post(
            "/api/v1/servers",
            serde_json::json!({ "name": "web2", "hostname": h2.host(), "port": h2.port(),
                "user": h2.user(), "private_key": h2.private_key() }),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let web2_id = v["id"].as_str().unwrap().to_string();
    let o = remora(&stack, &["servers", "import", kh.to_str().unwrap()], None).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let id = stack.submit(&web2_id, "true").await;
    let job = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error_code"], "host_key_mismatch", "{job}");
    let web2 = stack.get("/api/v1/servers/web2").await;
    assert_eq!(
        web2["host_key_presented"],
        h2.host_key_fingerprint().as_str()
    );
    assert_ne!(web2["host_key_fingerprint"], web2["host_key_presented"]);
    // The scan reads what each host presents now, with the key's type: web2 a mismatch, web1 its pin.
    let (st, v) = stack
        .post(
            "/api/v1/servers/host-keys/scan",
            serde_json::json!({"servers": ["web2", "web1"]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys[0]["name"], "web2", "{v}");
    assert_eq!(keys[0]["status"], "mismatch", "{v}");
    assert_eq!(keys[0]["presented"], h2.host_key_fingerprint().as_str());
    assert_eq!(keys[0]["key_type"], "ssh-ed25519", "{v}");
    assert_eq!(keys[1]["status"], "match", "{v}");
    assert_eq!(keys[1]["key_type"], "ssh-ed25519", "{v}");
    // The reviewed accept pins it and clears the pending mismatch.
    let (st, v) = stack
        .post(
            "/api/v1/servers/host-keys/accept",
            serde_json::json!({"keys": [{"server": "web2", "fingerprint": h2.host_key_fingerprint()}]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let web2 = stack.get("/api/v1/servers/web2").await;
    assert!(web2["host_key_presented"].is_null(), "{web2}");
    let id = stack.submit(&web2_id, "true").await;
    let job = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "completed", "{job}");

    // --jump on update, the 409 on deleting the jump host, and "" to clear.
    let o = remora(
        &stack,
        &["servers", "update", "web2", "--jump", "web1"],
        None,
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        stack.get("/api/v1/servers/web2").await["jump_server_id"],
        web1["id"]
    );
    let o = remora(&stack, &["servers", "rm", "web1"], None).await;
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("web2"), "{}", text(&o.stderr));
    let o = remora(&stack, &["servers", "update", "web2", "--jump", ""], None).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(stack.get("/api/v1/servers/web2").await["jump_server_id"].is_null());
    let o = remora(&stack, &["servers", "rm", "web1"], None).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
}
