//! The rest of the CLI: server edits and checks, key uploads, duplicate,
//! rerun, batches, tokens — and the shared table helpers (colours only on a
//! terminal, `NO_COLOR` respected, human times).

use crate::client::{enc, Api};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::IsTerminal;

pub fn color_enabled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A status word, coloured on a terminal.
pub fn paint_status(s: &str) -> String {
    if !color_enabled() {
        return s.to_string();
    }
    let code = match s {
        "completed" | "reachable" | "true" => "32",
        "failed" | "timed_out" | "unreachable" | "auth_failed" | "host_key_mismatch"
        | "timeout" | "false" => "31",
        "running" => "36",
        "canceled" => "33",
        "queued" => "90",
        _ => return s.to_string(),
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// "12s ago", "5m ago", "3h ago", else the date.
pub fn ago(v: &Value) -> String {
    let Some(ms) = v.as_str().and_then(remora_domain::time::rfc3339_to_ms) else {
        return "-".into();
    };
    let d = (remora_domain::time::now_ms() - ms).max(0) / 1000;
    match d {
        0..=59 => format!("{d}s ago"),
        60..=3599 => format!("{}m ago", d / 60),
        3600..=86_399 => format!("{}h ago", d / 3600),
        _ => v.as_str().unwrap_or("-").chars().take(10).collect(),
    }
}

pub fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub fn table(headers: &[&str]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY)
        .set_header(headers.to_vec());
    t
}

fn print_check(r: &Value) {
    println!(
        "{}: {}  latency {} ms  host key {} ({})",
        s(&r["name"]),
        paint_status(r["status"].as_str().unwrap_or("-")),
        s(&r["latency_ms"]),
        s(&r["host_key_fingerprint"]),
        s(&r["host_key_status"])
    );
    if let Some(e) = r["error"].as_str() {
        println!("  error: {e}");
    }
    if r["host_key_status"] == "mismatch" {
        println!(
            "  if the change is expected: remora servers accept-key {} --fingerprint {}",
            s(&r["name"]),
            s(&r["host_key_fingerprint"])
        );
    }
}

pub async fn server_test(api: &Api, json_out: bool, server: &str) -> Result<i32> {
    let r = api
        .post(
            &format!("/api/v1/servers/{}/test", enc(server)),
            &Value::Null,
        )
        .await?;
    if json_out {
        print_json(&r);
    } else {
        print_check(&r);
    }
    Ok(if r["ok"] == json!(true) { 0 } else { 1 })
}

/// One server, or all of them concurrently with a progress bar on a terminal.
pub async fn server_status(
    api: &Api,
    json_out: bool,
    server: Option<String>,
    all: bool,
) -> Result<i32> {
    if let Some(name) = server.filter(|_| !all) {
        let r = api
            .get(&format!("/api/v1/servers/{}/status", enc(&name)))
            .await?;
        if json_out {
            print_json(&r);
        } else {
            print_check(&r);
        }
        return Ok(if r["ok"] == json!(true) { 0 } else { 1 });
    }
    let servers = api.get("/api/v1/servers").await?;
    let list: Vec<Value> = servers["servers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s["is_active"] == json!(true))
        .collect();
    let bar = if std::io::stderr().is_terminal() && !json_out {
        let b = indicatif::ProgressBar::new(list.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} checking {pos}/{len} {wide_bar} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let mut set = tokio::task::JoinSet::new();
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    for sv in list {
        let api = api.clone();
        let limit = limit.clone();
        set.spawn(async move {
            let _p = limit.acquire_owned().await;
            let id = s(&sv["id"]);
            let r = api
                .get(&format!("/api/v1/servers/{}/status", enc(&id)))
                .await;
            (sv, r)
        });
    }
    let mut rows = Vec::new();
    while let Some(done) = set.join_next().await {
        let (sv, r) = done.context("a check task failed")?;
        if let Some(b) = &bar {
            b.inc(1);
            b.set_message(s(&sv["name"]));
        }
        rows.push(match r {
            Ok(v) => v,
            Err(e) => json!({ "name": sv["name"], "server_id": sv["id"], "ok": false, "status": "error", "error": e.to_string() }),
        });
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    rows.sort_by_key(|r| s(&r["name"]));
    let bad = rows.iter().filter(|r| r["ok"] != json!(true)).count();
    if json_out {
        print_json(&json!({ "servers": rows, "total": rows.len(), "unreachable": bad }));
    } else {
        let mut t = table(&["NAME", "STATUS", "LATENCY", "HOST KEY", "ERROR"]);
        for r in &rows {
            let lat = r["latency_ms"]
                .as_u64()
                .map(|l| format!("{l} ms"))
                .unwrap_or_else(|| "-".into());
            t.add_row(vec![
                s(&r["name"]),
                paint_status(r["status"].as_str().unwrap_or("-")),
                lat,
                s(&r["host_key_status"]),
                s(&r["error"]),
            ]);
        }
        println!("{t}");
        eprintln!("{} of {} reachable", rows.len() - bad, rows.len());
    }
    Ok(if bad == 0 { 0 } else { 1 })
}

pub async fn accept_key(
    api: &Api,
    json_out: bool,
    server: &str,
    fingerprint: Option<String>,
) -> Result<i32> {
    let body = match fingerprint {
        Some(f) => json!({ "fingerprint": f }),
        None => Value::Null,
    };
    let v = api
        .post(
            &format!("/api/v1/servers/{}/host-key/accept", enc(server)),
            &body,
        )
        .await?;
    if json_out {
        print_json(&v);
    } else {
        println!(
            "pinned host key {} for {}",
            s(&v["host_key_fingerprint"]),
            s(&v["name"])
        );
    }
    Ok(0)
}

pub fn read_password_stdin() -> Result<String> {
    use std::io::Read;
    let pw = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("SSH password: ")?
    } else {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    };
    if pw.is_empty() {
        bail!("the password read from stdin is empty");
    }
    Ok(pw)
}

pub async fn pem_upload(
    api: &Api,
    json_out: bool,
    file: &std::path::Path,
    passphrase_env: Option<String>,
) -> Result<i32> {
    let text = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    // The file name never reaches the server's filesystem; send a neutral one.
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(text).file_name("key"),
    );
    if let Some(var) = passphrase_env {
        form = form.text(
            "passphrase",
            std::env::var(&var)
                .with_context(|| format!("environment variable {var} is not set"))?,
        );
    }
    let v: Value = api
        .send(
            api.request(reqwest::Method::POST, "/api/v1/pem-files")
                .multipart(form),
        )
        .await?
        .json()
        .await?;
    if json_out {
        print_json(&v);
    } else {
        println!(
            "uploaded {} key {} (id {})",
            s(&v["key_type"]),
            s(&v["fingerprint"]),
            s(&v["id"])
        );
    }
    Ok(0)
}

pub async fn pem_list(api: &Api, json_out: bool) -> Result<i32> {
    let v = api.get("/api/v1/pem-files").await?;
    if json_out {
        print_json(&v);
        return Ok(0);
    }
    let mut t = table(&["ID", "TYPE", "FINGERPRINT", "SIZE", "UPLOADED"]);
    for p in v["pem_files"].as_array().cloned().unwrap_or_default() {
        t.add_row(vec![
            s(&p["id"]),
            s(&p["key_type"]),
            s(&p["fingerprint"]),
            s(&p["size"]),
            ago(&p["created_at"]),
        ]);
    }
    println!("{t}");
    Ok(0)
}

pub async fn batch(api: &Api, json_out: bool, id: &str) -> Result<i32> {
    let v = api.get(&format!("/api/v1/batches/{}", enc(id))).await?;
    if json_out {
        print_json(&v);
        return Ok(0);
    }
    let mut t = table(&["SERVER", "STATUS", "EXIT", "JOB", "ERROR"]);
    for c in v["servers"].as_array().cloned().unwrap_or_default() {
        t.add_row(vec![
            s(&c["server_name"]),
            paint_status(c["status"].as_str().unwrap_or("-")),
            s(&c["exit_code"]),
            s(&c["job_id"]),
            s(&c["error"]),
        ]);
    }
    println!("{t}");
    let summary: Vec<String> = v["summary"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, n)| n.as_i64() != Some(0))
                .map(|(k, n)| format!("{k}: {n}"))
                .collect()
        })
        .unwrap_or_default();
    eprintln!("batch {}: {}", id, summary.join(", "));
    Ok(0)
}

pub async fn tokens_list(api: &Api, json_out: bool) -> Result<i32> {
    let v = api.get("/api/v1/tokens").await?;
    if json_out {
        print_json(&v);
        return Ok(0);
    }
    let mut t = table(&["ID", "NAME", "ROLE", "CREATED", "REVOKED"]);
    for k in v["tokens"].as_array().cloned().unwrap_or_default() {
        t.add_row(vec![
            s(&k["id"]),
            s(&k["name"]),
            s(&k["role"]),
            ago(&k["created_at"]),
            s(&k["revoked_at"]),
        ]);
    }
    println!("{t}");
    Ok(0)
}
