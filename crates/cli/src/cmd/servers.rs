//! `remora servers …`: register, change, check, pin, list, show and delete SSH targets.

use crate::client::{enc, Api, Reply};
use crate::render::{emit, fields, opt, paint_status, table, Human, Output, View};
use crate::responses::{CheckResult, ServerList};
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use remora_domain::Server;
use serde_json::{json, Value};
use std::io::IsTerminal;

#[derive(Subcommand)]
pub enum ServersCmd {
    /// Register a server.
    #[command(
        after_help = "Examples:\n  remora servers add web1 --host 10.0.0.5 --user deploy --key-file ~/.ssh/id_ed25519\n  echo \"$PW\" | remora servers add db1 --host db1.lan --user ops --password-stdin"
    )]
    Add {
        name: String,
        #[arg(long)]
        host: String,
        #[arg(long, default_value_t = 22)]
        port: u16,
        #[arg(long)]
        user: String,
        /// Private key file (OpenSSH or PEM).
        #[arg(long, conflicts_with = "password_stdin")]
        key_file: Option<std::path::PathBuf>,
        /// Use a key uploaded with `remora pem upload` (its id).
        #[arg(long, conflicts_with_all = ["password_stdin", "key_file"])]
        pem: Option<String>,
        /// Use a shared credential (`remora credentials add`), by name or id.
        #[arg(long, conflicts_with_all = ["password_stdin", "key_file", "pem"])]
        credential: Option<String>,
        /// Read the key's passphrase from this environment variable.
        #[arg(long)]
        passphrase_env: Option<String>,
        /// Read the password from stdin (no echo, no shell history).
        #[arg(long)]
        password_stdin: bool,
        /// The sudo password for `become` jobs, read from this file's first line (never an
        /// argument: it would show in the process list).
        #[arg(long)]
        sudo_password_file: Option<std::path::PathBuf>,
        /// Tag (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Jobs at once on this server, over all workers.
        #[arg(long)]
        max_concurrency: Option<i64>,
        /// Reach it through this server (its jump host: name or id).
        #[arg(long, value_name = "NAME|ID")]
        jump: Option<String>,
    },
    /// Change a server (only the options given).
    #[command(
        after_help = "Examples:\n  remora servers update web1 --port 2222\n  remora servers update web1 --key-file new_key\n  remora servers update web1 --inactive"
    )]
    Update {
        server: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        port: Option<u16>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long, conflicts_with = "password_stdin")]
        key_file: Option<std::path::PathBuf>,
        #[arg(long)]
        password_stdin: bool,
        /// Switch to a shared credential (by name or id).
        #[arg(long, conflicts_with_all = ["password_stdin", "key_file"])]
        credential: Option<String>,
        /// Replace the sudo password with this file's first line (an empty file removes it).
        #[arg(long)]
        sudo_password_file: Option<std::path::PathBuf>,
        /// Replace the tags (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long)]
        max_concurrency: Option<i64>,
        #[arg(long, conflicts_with = "active")]
        inactive: bool,
        #[arg(long)]
        active: bool,
        /// Reach it through this server (name or id); `--jump ""` removes the jump host.
        #[arg(long, value_name = "NAME|ID")]
        jump: Option<String>,
    },
    /// Import servers from an inventory: CSV, OpenSSH client config, Ansible INI/YAML, or a
    /// `known_hosts` file that pins the host keys of servers already registered.
    #[command(
        after_help = "Examples:\n  remora servers import ~/.ssh/config --dry-run --user deploy --key-file ~/.ssh/id_ed25519\n  remora servers import hosts.ini --tag lab --pem PEM_ID\n  remora servers import ~/.ssh/known_hosts\n\nThe credentials given here (--key-file, --pem, --password-stdin) apply to the servers the\nimport creates; IdentityFile lines are reported, not read. Nothing is applied when any\nline is bad (exit 1, the lines listed)."
    )]
    Import {
        file: std::path::PathBuf,
        /// csv, ssh_config, ansible (INI or YAML), ansible_ini, ansible_yaml or known_hosts;
        /// guessed from the file name when absent.
        #[arg(long)]
        format: Option<String>,
        /// Show what would change, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Tag every imported server (repeatable; added to the file's groups).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// User for hosts the file gives none.
        #[arg(long)]
        user: Option<String>,
        /// Port for hosts the file gives none.
        #[arg(long)]
        port: Option<u16>,
        #[arg(long, conflicts_with = "password_stdin")]
        key_file: Option<std::path::PathBuf>,
        #[arg(long, conflicts_with_all = ["password_stdin", "key_file"])]
        pem: Option<String>,
        #[arg(long)]
        passphrase_env: Option<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Real SSH login and `true`: latency, host key, error.
    #[command(after_help = "Example:\n  remora servers test web1")]
    Test { server: String },
    /// Check one server now (SSH login), or all (`--all`, concurrent, with a progress bar).
    /// Running a check needs an operator token; `--stored` only reads the last stored check
    /// (a viewer token is enough, nothing logs in).
    #[command(
        after_help = "Examples:\n  remora servers status web1\n  remora servers status --all\n  remora servers status --all --stored"
    )]
    Status {
        server: Option<String>,
        #[arg(long)]
        all: bool,
        /// Read the last stored check instead of logging in.
        #[arg(long)]
        stored: bool,
    },
    /// Review host keys of many servers: `scan` what they present, `accept` a reviewed list.
    #[command(subcommand)]
    HostKeys(super::hostkeys::HostKeysCmd),
    /// Pin the host key the server presents now (after a legitimate change).
    #[command(after_help = "Example:\n  remora servers accept-key web1 --fingerprint SHA256:…")]
    AcceptKey {
        server: String,
        /// Only if the server presents exactly this fingerprint.
        #[arg(long)]
        fingerprint: Option<String>,
    },
    /// List servers.
    #[command(after_help = "Example:\n  remora servers list -o json")]
    List,
    /// Show one server (by name or id).
    #[command(after_help = "Example:\n  remora servers get web1")]
    Get { server: String },
    /// Delete a server.
    #[command(after_help = "Example:\n  remora servers rm web1")]
    Rm { server: String },
}

pub async fn run(api: &Api, out: Output, c: ServersCmd) -> Result<i32> {
    match c {
        ServersCmd::Add {
            name,
            host,
            port,
            user,
            key_file,
            pem,
            credential,
            passphrase_env,
            password_stdin,
            sudo_password_file,
            tags,
            max_concurrency,
            jump,
        } => {
            let mut body =
                json!({ "name": name, "hostname": host, "port": port, "user": user, "tags": tags });
            if let Some(j) = jump {
                body["jump_server_id"] = json!(j);
            }
            if let Some(m) = max_concurrency {
                body["max_concurrency"] = json!(m);
            }
            if let Some(c) = credential {
                body["credential_id"] = json!(c);
            } else if let Some(p) = pem {
                body["pem_file_id"] = json!(p);
                body["auth_type"] = json!("key");
            } else if let Some(f) = key_file {
                body["private_key"] = json!(read_key_file(&f)?);
                body["auth_type"] = json!("key");
                if let Some(var) = passphrase_env {
                    body["passphrase"] = json!(std::env::var(&var)
                        .with_context(|| format!("environment variable {var} is not set"))?);
                }
            } else if password_stdin {
                body["password"] = json!(read_password_stdin()?);
                body["auth_type"] = json!("password");
            } else {
                bail!("give --credential NAME, --key-file FILE, --pem ID or --password-stdin");
            }
            if let Some(f) = sudo_password_file {
                let pw = read_sudo_password_file(&f)?;
                if pw.is_empty() {
                    bail!("{}: the sudo password is empty", f.display());
                }
                body["sudo_password"] = json!(pw);
            }
            let r: Reply<Server> = api.post_as("/api/v1/servers", &body).await?;
            let s = &r.body;
            emit(
                out,
                &r.raw,
                &Human::line(format!("server {} added (id {})", s.name, s.id)),
            );
            Ok(0)
        }
        ServersCmd::Update {
            server,
            name,
            host,
            port,
            user,
            key_file,
            password_stdin,
            credential,
            sudo_password_file,
            tags,
            max_concurrency,
            inactive,
            active,
            jump,
        } => {
            let cur = super::resolve_server(api, &server).await?.body;
            let mut body = json!({});
            if let Some(c) = credential {
                body["credential_id"] = json!(c);
            }
            if let Some(j) = jump {
                body["jump_server_id"] = json!(j);
            }
            if let Some(v) = name {
                body["name"] = json!(v);
            }
            if let Some(v) = host {
                body["hostname"] = json!(v);
            }
            if let Some(v) = port {
                body["port"] = json!(v);
            }
            if let Some(v) = user {
                body["user"] = json!(v);
            }
            if let Some(f) = key_file {
                body["private_key"] = json!(read_key_file(&f)?);
            }
            if password_stdin {
                body["password"] = json!(read_password_stdin()?);
            }
            if let Some(f) = sudo_password_file {
                body["sudo_password"] = json!(read_sudo_password_file(&f)?);
            }
            if !tags.is_empty() {
                body["tags"] = json!(tags);
            }
            if let Some(v) = max_concurrency {
                body["max_concurrency"] = json!(v);
            }
            if inactive {
                body["is_active"] = json!(false);
            }
            if active {
                body["is_active"] = json!(true);
            }
            if body.as_object().map(|o| o.is_empty()).unwrap_or(true) {
                bail!("nothing to change: give at least one option (see --help)");
            }
            let r: Reply<Server> = api
                .send_as(
                    api.request(
                        reqwest::Method::PUT,
                        &format!("/api/v1/servers/{}", enc(&cur.id)),
                    )
                    .json(&body),
                )
                .await?;
            emit(
                out,
                &r.raw,
                &Human::line(format!("server {} updated", r.body.name)),
            );
            Ok(0)
        }
        ServersCmd::Import {
            file,
            format,
            dry_run,
            tags,
            user,
            port,
            key_file,
            pem,
            passphrase_env,
            password_stdin,
        } => {
            let content = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let format = match format {
                Some(f) => f,
                None => guess_format(&file).with_context(|| {
                    format!(
                        "cannot tell the format of {}: give --format",
                        file.display()
                    )
                })?,
            };
            let mut defaults = json!({});
            if !tags.is_empty() {
                defaults["tags"] = json!(tags);
            }
            if let Some(u) = user {
                defaults["user"] = json!(u);
            }
            if let Some(p) = port {
                defaults["port"] = json!(p);
            }
            if let Some(p) = pem {
                defaults["pem_file_id"] = json!(p);
            } else if let Some(f) = key_file {
                defaults["private_key"] = json!(read_key_file(&f)?);
                if let Some(var) = passphrase_env {
                    defaults["passphrase"] = json!(std::env::var(&var)
                        .with_context(|| format!("environment variable {var} is not set"))?);
                }
            } else if password_stdin {
                defaults["password"] = json!(read_password_stdin()?);
            }
            let body = json!({ "format": format, "content": content, "dry_run": dry_run, "defaults": defaults });
            let rb = api
                .request(reqwest::Method::POST, "/api/v1/servers/import")
                .json(&body);
            // 422 with a result (no `error` object) is a file with bad lines: show them all.
            // Anything else that is not a success is the usual API failure.
            let resp = rb.send().await.map_err(|e| api.unreachable(&e))?;
            let status = resp.status();
            let raw: Value = resp.json().await.unwrap_or(Value::Null);
            if status.is_success() {
                emit(out, &raw, &import_view(&raw, &file));
                return Ok(0);
            }
            if status == reqwest::StatusCode::UNPROCESSABLE_ENTITY && raw.get("errors").is_some() {
                emit(out, &raw, &import_view(&raw, &file));
                return Ok(1);
            }
            let mut msg = raw["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("the API answered {status}"));
            if let Some(f) = raw["error"]["field"].as_str() {
                msg = format!("{msg} [field: {f}]");
            }
            bail!("{msg}")
        }
        ServersCmd::Test { server } => {
            let r: Reply<CheckResult> = api
                .post_as(
                    &format!("/api/v1/servers/{}/test", enc(&server)),
                    &Value::Null,
                )
                .await?;
            emit(out, &r.raw, &r.body);
            Ok(if r.body.ok { 0 } else { 1 })
        }
        ServersCmd::Status {
            server,
            all,
            stored,
        } => {
            if server.is_none() && !all {
                bail!("give a server name, or --all");
            }
            status(api, out, server, all, stored).await
        }
        ServersCmd::HostKeys(c) => super::hostkeys::run(api, out, c).await,
        ServersCmd::AcceptKey {
            server,
            fingerprint,
        } => {
            let body = match fingerprint {
                Some(f) => json!({ "fingerprint": f }),
                // An empty object, not `null` (the API refuses a null body).
                None => json!({}),
            };
            let r: Reply<Server> = api
                .post_as(
                    &format!("/api/v1/servers/{}/host-key/accept", enc(&server)),
                    &body,
                )
                .await?;
            let s = &r.body;
            emit(
                out,
                &r.raw,
                &Human::line(format!(
                    "pinned host key {} for {}",
                    opt(&s.host_key_fingerprint),
                    s.name
                )),
            );
            Ok(0)
        }
        ServersCmd::List => {
            let r: Reply<ServerList> = api.get_as("/api/v1/servers").await?;
            emit(out, &r.raw, &r.body);
            Ok(0)
        }
        ServersCmd::Get { server } => {
            let r = super::resolve_server(api, &server).await?;
            emit(out, &r.raw, &Detail(&r.body));
            Ok(0)
        }
        ServersCmd::Rm { server } => {
            let s = super::resolve_server(api, &server).await?.body;
            api.delete(&format!("/api/v1/servers/{}", enc(&s.id)))
                .await?;
            emit(
                out,
                &json!({ "deleted": s.id }),
                &Human::line(format!("server {} deleted", s.name)),
            );
            Ok(0)
        }
    }
}

impl View for ServerList {
    fn human(&self) -> Human {
        let mut t = table(&[
            "NAME",
            "ADDRESS",
            "USER",
            "AUTH",
            "TAGS",
            "LAST STATUS",
            "HOST KEY",
        ]);
        for sv in &self.servers {
            t.add_row(vec![
                sv.name.clone(),
                format!("{}:{}", sv.hostname, sv.port),
                sv.user.clone(),
                sv.auth_type.as_str().to_string(),
                sv.tags.join(","),
                paint_status(&opt(&sv.last_status)),
                opt(&sv.host_key_fingerprint),
            ]);
        }
        Human::table(t)
    }
}

/// `servers get`: one server, field by field.
struct Detail<'a>(&'a Server);

impl View for Detail<'_> {
    fn human(&self) -> Human {
        Human::table(fields(
            self.0,
            &[
                "id",
                "name",
                "hostname",
                "port",
                "user",
                "auth_type",
                "tags",
                "max_concurrency",
                "is_active",
                "has_password",
                "has_private_key",
                "has_sudo_password",
                "host_key_fingerprint",
                "last_status",
                "created_at",
            ],
        ))
    }
}

impl View for CheckResult {
    fn human(&self) -> Human {
        let mut h = Human::line(format!(
            "{}: {}  latency {} ms  host key {} ({})",
            self.name,
            paint_status(&self.status),
            opt(&self.latency_ms),
            opt(&self.host_key_fingerprint),
            opt(&self.host_key_status)
        ));
        if let Some(e) = &self.error {
            h.stdout.push_str(&format!("  error: {e}\n"));
        }
        if self.host_key_status.as_deref() == Some("mismatch") {
            h.stdout.push_str(&format!(
                "  if the change is expected: remora servers accept-key {} --fingerprint {}\n",
                self.name,
                opt(&self.host_key_fingerprint)
            ));
        }
        h
    }
}

/// `servers status --all`: one row per server, sorted by name.
struct StatusTable<'a>(&'a [(Value, CheckResult)]);

impl View for StatusTable<'_> {
    fn human(&self) -> Human {
        let mut t = table(&["NAME", "STATUS", "LATENCY", "HOST KEY", "ERROR"]);
        for (_, r) in self.0 {
            t.add_row(vec![
                r.name.clone(),
                paint_status(&r.status),
                r.latency_ms
                    .map(|l| format!("{l} ms"))
                    .unwrap_or_else(|| "-".into()),
                opt(&r.host_key_status),
                opt(&r.error),
            ]);
        }
        let bad = self.0.iter().filter(|(_, r)| !r.ok).count();
        Human::table(t).note(format!(
            "{} of {} reachable",
            self.0.len() - bad,
            self.0.len()
        ))
    }
}

/// One server, or all of them concurrently with a progress bar on a terminal.
async fn status(
    api: &Api,
    out: Output,
    server: Option<String>,
    all: bool,
    stored: bool,
) -> Result<i32> {
    // GET reads the last stored check; POST runs one (operator).
    let check = move |api: Api, id: String| async move {
        let path = format!("/api/v1/servers/{}/status", enc(&id));
        if stored {
            api.get_as::<CheckResult>(&path).await
        } else {
            api.post_as::<CheckResult>(&path, &json!({})).await
        }
    };
    if let Some(name) = server.filter(|_| !all) {
        let r: Reply<CheckResult> = check(api.clone(), name).await?;
        emit(out, &r.raw, &r.body);
        return Ok(if r.body.ok { 0 } else { 1 });
    }
    let servers: Reply<ServerList> = api.get_as("/api/v1/servers").await?;
    let list: Vec<Server> = servers
        .body
        .servers
        .into_iter()
        .filter(|s| s.is_active)
        .collect();
    let bar = if std::io::stderr().is_terminal() && out == Output::Table {
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
            let r = check(api, sv.id.clone()).await;
            (sv, r)
        });
    }
    let mut rows: Vec<(Value, CheckResult)> = Vec::new();
    while let Some(done) = set.join_next().await {
        let (sv, r) = done.context("a check task failed")?;
        if let Some(b) = &bar {
            b.inc(1);
            b.set_message(sv.name.clone());
        }
        rows.push(match r {
            Ok(r) => (r.raw, r.body),
            Err(e) => (
                json!({ "name": sv.name, "server_id": sv.id, "ok": false, "status": "error", "error": e.to_string() }),
                CheckResult {
                    name: sv.name,
                    ok: false,
                    status: "error".into(),
                    latency_ms: None,
                    host_key_fingerprint: None,
                    host_key_status: None,
                    error: Some(e.to_string()),
                },
            ),
        });
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    rows.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let bad = rows.iter().filter(|(_, r)| !r.ok).count();
    let raw: Vec<&Value> = rows.iter().map(|(v, _)| v).collect();
    emit(
        out,
        &json!({ "servers": raw, "total": rows.len(), "unreachable": bad }),
        &StatusTable(&rows),
    );
    Ok(if bad == 0 { 0 } else { 1 })
}

fn read_key_file(f: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(f).with_context(|| format!("reading key file {}", f.display()))
}

/// The first line of `f` (without its line end).
fn read_sudo_password_file(f: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(f)
        .with_context(|| format!("reading sudo password file {}", f.display()))?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

fn read_password_stdin() -> Result<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: &str, key: Option<&str>, error: Option<&str>) -> CheckResult {
        CheckResult {
            name: "web1".into(),
            ok: status == "reachable",
            status: status.into(),
            latency_ms: Some(12),
            host_key_fingerprint: Some("SHA256:abc".into()),
            host_key_status: key.map(str::to_string),
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn a_check_is_one_line_plus_the_error_and_the_way_out_of_a_mismatch() {
        assert_eq!(
            check("reachable", Some("pinned"), None).human().stdout,
            "web1: reachable  latency 12 ms  host key SHA256:abc (pinned)\n"
        );
        let h = check("host_key_mismatch", Some("mismatch"), Some("changed")).human();
        assert_eq!(
            h.stdout,
            "web1: host_key_mismatch  latency 12 ms  host key SHA256:abc (mismatch)\n  error: changed\n  if the change is expected: remora servers accept-key web1 --fingerprint SHA256:abc\n"
        );
    }

    #[test]
    fn the_status_table_counts_the_reachable() {
        let rows = vec![
            (Value::Null, check("reachable", None, None)),
            (Value::Null, check("timeout", None, Some("no answer"))),
        ];
        let h = StatusTable(&rows).human();
        assert!(h.stdout.contains("12 ms") && h.stdout.contains("no answer"));
        assert_eq!(h.stderr, "1 of 2 reachable\n");
    }
}

/// The import format a file name suggests.
fn guess_format(f: &std::path::Path) -> Option<String> {
    let name = f.file_name()?.to_string_lossy().to_ascii_lowercase();
    let ext = f
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    Some(
        match (name.as_str(), ext.as_deref()) {
            (n, _) if n.starts_with("known_hosts") => "known_hosts",
            (n, _) if n == "config" || n == "ssh_config" || n.ends_with(".ssh_config") => {
                "ssh_config"
            }
            (_, Some("csv")) => "csv",
            (_, Some("ini" | "yml" | "yaml")) => "ansible",
            (n, _) if n == "hosts" || n == "inventory" => "ansible",
            _ => return None,
        }
        .to_string(),
    )
}

/// An import result for a person: one table row per host, then errors and notes with lines.
fn import_view(raw: &Value, file: &std::path::Path) -> Human {
    let mut t = table(&["LINE", "NAME", "ACTION", "DETAIL"]);
    for r in raw["rows"].as_array().into_iter().flatten() {
        let reasons: Vec<&str> = r["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str())
            .collect();
        t.add_row(vec![
            r["line"].to_string(),
            r["name"].as_str().unwrap_or("").to_string(),
            r["action"].as_str().unwrap_or("").to_string(),
            reasons.join("; "),
        ]);
    }
    let n = |k: &str| raw[k].as_u64().unwrap_or(0);
    let verb = if raw["applied"] == true {
        "imported"
    } else if raw["dry_run"] == true {
        "dry run (nothing written)"
    } else {
        "NOT imported"
    };
    let mut h = Human::table(t).note(format!(
        "{verb}: {} created, {} updated, {} unchanged, {} skipped",
        n("created"),
        n("updated"),
        n("unchanged"),
        n("skipped")
    ));
    for w in raw["warnings"].as_array().into_iter().flatten() {
        h = h.note(format!(
            "{}:{}: note: {}",
            file.display(),
            w["line"],
            w["message"].as_str().unwrap_or("")
        ));
    }
    for e in raw["errors"].as_array().into_iter().flatten() {
        h = h.note(format!(
            "{}:{}: error: {}",
            file.display(),
            e["line"],
            e["message"].as_str().unwrap_or("")
        ));
    }
    h
}
