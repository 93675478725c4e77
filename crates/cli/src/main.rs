//! `remora`: the command-line client for every API action, plus `remora up`
//! (API, queue and worker in one process).

mod client;
mod follow;
mod more;
mod up;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use client::{enc, Api};
use serde_json::{json, Value};
use std::io::Read;

#[derive(Parser)]
#[command(
    name = "remora",
    version,
    about = "Remora: run commands and scripts on your SSH servers",
    after_help = "Examples:\n  remora servers add web1 --host 10.0.0.5 --user deploy --key-file ~/.ssh/id_ed25519\n  remora submit --server web1 --follow -- uptime\n  remora jobs list --status failed"
)]
struct Cli {
    /// API address.
    #[arg(long, global = true, env = "REMORA_API_URL")]
    url: Option<String>,
    /// API token.
    #[arg(long, global = true, env = "REMORA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Saved profile to use (see `remora login`).
    #[arg(long, global = true, env = "REMORA_PROFILE")]
    profile: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value = "table")]
    output: Output,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Save an API URL and token as a profile.
    #[command(
        after_help = "Example:\n  remora login --url http://ops:8080 --token rmr_… --name prod"
    )]
    Login {
        /// Profile name.
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// Manage servers.
    #[command(subcommand)]
    Servers(ServersCmd),
    /// Submit a command (after `--`) or a script to one or more servers.
    #[command(
        after_help = "Examples:\n  remora submit --server web1 -- df -h /\n  remora submit --tag web --follow -- systemctl restart nginx\n  remora submit --server web1 --script deploy.sh --follow -- v1.2.3\n\n--follow exit codes: the job's exit code (one server); 124 timed out; 130 canceled;\n1 failed without an exit code; with several servers 0 if all completed, else 1;\n2 when a second Ctrl-C detached."
    )]
    Submit(SubmitArgs),
    /// List and read jobs.
    #[command(subcommand)]
    Jobs(JobsCmd),
    /// Print a job's stored output (stdout to stdout, stderr to stderr).
    #[command(after_help = "Example:\n  remora logs 0199… --follow")]
    Logs {
        id: String,
        /// Stream until the job ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// Cancel a job (its remote process tree is killed).
    #[command(after_help = "Example:\n  remora cancel 0199…")]
    Cancel { id: String },
    /// Run a job again, optionally elsewhere or with another timeout/priority.
    #[command(after_help = "Example:\n  remora duplicate 0199… --server web2 --priority 9")]
    Duplicate {
        id: String,
        #[arg(long)]
        server: Option<String>,
        #[arg(long)]
        timeout: Option<i64>,
        #[arg(long)]
        priority: Option<i64>,
        /// Stream output and exit with the job's exit code.
        #[arg(long, short)]
        follow: bool,
    },
    /// Run a finished job again, unchanged.
    #[command(after_help = "Example:\n  remora rerun 0199… --follow")]
    Rerun {
        id: String,
        #[arg(long, short)]
        follow: bool,
    },
    /// Show the per-server grid of a multi-server submission.
    #[command(after_help = "Example:\n  remora batches 0199…")]
    Batches { id: String },
    /// Manage uploaded private keys.
    #[command(subcommand)]
    Pem(PemCmd),
    /// Manage API tokens (admin).
    #[command(subcommand)]
    Tokens(TokensCmd),
    /// List workers.
    #[command(after_help = "Example:\n  remora workers")]
    Workers,
    /// Run API, queue and worker in one process (SQLite under ./data).
    #[command(after_help = "Example:\n  remora up --demo")]
    Up(Box<up::UpArgs>),
    /// Re-encrypt every stored secret under a new master key (run on the API host; then restart
    /// the API and the workers with the new key).
    #[command(
        after_help = "Examples:\n  remora rekey                      # key in ./data/master.key: replaced, old one kept\n  REMORA_MASTER_KEY=… remora rekey  # prints the new key to set everywhere"
    )]
    Rekey(Box<RekeyArgs>),
    /// Print shell completions.
    #[command(after_help = "Example:\n  remora completions bash > /etc/bash_completion.d/remora")]
    Completions { shell: clap_complete::Shell },
}

#[derive(clap::Args)]
struct RekeyArgs {
    #[command(flatten)]
    store: remora_store::config::StoreArgs,
    /// The new key (64 hex chars or base64 of 32 bytes); default: generated.
    #[arg(long, hide_env_values = true)]
    new_key: Option<String>,
}

async fn rekey(a: RekeyArgs) -> Result<i32> {
    use remora_store::vault::{parse_key, write_private_file};
    let (store, old) = a.store.open().await?;
    let key: [u8; 32] = match &a.new_key {
        Some(k) => parse_key(k)?,
        None => {
            let mut k = [0u8; 32];
            use rand::RngCore;
            rand::rngs::OsRng.fill_bytes(&mut k);
            k
        }
    };
    let new = remora_store::Vault::new(key);
    // The new key is on disk before any value is sealed with it.
    let dir = &a.store.data_dir;
    let staged = dir.join("master.key.new");
    write_private_file(&staged, hex::encode(key).as_bytes())
        .with_context(|| format!("writing {}", staged.display()))?;
    let n = store.rekey(&old, &new).await?;
    if a.store
        .master_key
        .as_deref()
        .is_some_and(|k| !k.trim().is_empty())
    {
        println!("{}", hex::encode(key));
        eprintln!(
            "re-encrypted {n} secret(s) under key {} (also saved 0600 in {}).",
            new.key_id(),
            staged.display()
        );
        eprintln!("Set REMORA_MASTER_KEY to the key above on every API and worker (REMORA_MASTER_KEY_PREVIOUS=<old key> during the rollout) and restart them.");
    } else {
        let current = dir.join("master.key");
        let backup = dir.join(format!(
            "master.key.previous-{}",
            remora_domain::time::now_ms()
        ));
        std::fs::rename(&current, &backup)
            .with_context(|| format!("keeping the old key as {}", backup.display()))?;
        std::fs::rename(&staged, &current)
            .with_context(|| format!("installing {}", current.display()))?;
        eprintln!(
            "re-encrypted {n} secret(s) under key {}; {} holds it, the old key is kept in {}.",
            new.key_id(),
            current.display(),
            backup.display()
        );
        eprintln!("Restart the API and the workers to use it.");
    }
    Ok(0)
}

#[derive(Subcommand)]
enum PemCmd {
    /// Upload a private key file (it must parse; it is stored encrypted).
    #[command(
        after_help = "Example:\n  remora pem upload ~/.ssh/deploy.pem\n  remora servers add web1 --host 10.0.0.5 --user deploy --pem <id>"
    )]
    Upload {
        file: std::path::PathBuf,
        /// Read the key's passphrase from this environment variable.
        #[arg(long)]
        passphrase_env: Option<String>,
    },
    /// List uploaded keys.
    #[command(after_help = "Example:\n  remora pem list")]
    List,
    /// Delete an uploaded key no server uses.
    #[command(after_help = "Example:\n  remora pem rm 0199…")]
    Rm { id: String },
}

#[derive(Subcommand)]
enum TokensCmd {
    /// List tokens (never their secrets).
    #[command(after_help = "Example:\n  remora tokens list")]
    List,
    /// Create a token; its secret is printed once.
    #[command(after_help = "Example:\n  remora tokens create ci --role operator")]
    Create {
        name: String,
        /// admin, operator or viewer (read-only).
        #[arg(long, default_value = "operator")]
        role: String,
    },
    /// Revoke a token.
    #[command(after_help = "Example:\n  remora tokens revoke 0199…")]
    Revoke { id: String },
}

#[derive(Subcommand)]
enum ServersCmd {
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
        /// Read the key's passphrase from this environment variable.
        #[arg(long)]
        passphrase_env: Option<String>,
        /// Read the password from stdin (no echo, no shell history).
        #[arg(long)]
        password_stdin: bool,
        /// Tag (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Jobs at once on this server, over all workers.
        #[arg(long)]
        max_concurrency: Option<i64>,
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
        /// Replace the tags (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long)]
        max_concurrency: Option<i64>,
        #[arg(long, conflicts_with = "active")]
        inactive: bool,
        #[arg(long)]
        active: bool,
    },
    /// Real SSH login and `true`: latency, host key, error.
    #[command(after_help = "Example:\n  remora servers test web1")]
    Test { server: String },
    /// Health of one server, or of all (`--all`, concurrent, with a progress bar).
    #[command(
        after_help = "Examples:\n  remora servers status web1\n  remora servers status --all"
    )]
    Status {
        server: Option<String>,
        #[arg(long)]
        all: bool,
    },
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

#[derive(clap::Args)]
struct SubmitArgs {
    /// Target server name or id (repeatable).
    #[arg(long = "server", short = 's')]
    servers: Vec<String>,
    /// Target every active server with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Run this script file (`-` reads stdin); arguments after `--` are its args.
    #[arg(long)]
    script: Option<String>,
    /// Shell for --script.
    #[arg(long)]
    shell: Option<String>,
    /// Seconds before the job is killed (0 = no limit).
    #[arg(long)]
    timeout: Option<i64>,
    /// 1–10, higher runs first.
    #[arg(long)]
    priority: Option<i64>,
    /// Stream output and exit with the job's exit code.
    #[arg(long, short)]
    follow: bool,
    /// The command and its arguments (after `--`).
    #[arg(last = true)]
    command: Vec<String>,
}

#[derive(Subcommand)]
enum JobsCmd {
    /// List jobs, newest first.
    #[command(after_help = "Example:\n  remora jobs list --status running --limit 50")]
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        server: Option<String>,
        /// Jobs whose id, command or script contains this text (case-insensitive).
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long, default_value_t = 1)]
        page: i64,
    },
    /// Show one job.
    #[command(after_help = "Example:\n  remora jobs get 0199…")]
    Get { id: String },
}

use more::{paint_status, print_json, s};

fn duration(job: &Value) -> String {
    let start = job["started_at"]
        .as_str()
        .and_then(remora_domain::time::rfc3339_to_ms);
    let end = job["finished_at"]
        .as_str()
        .and_then(remora_domain::time::rfc3339_to_ms)
        .unwrap_or_else(remora_domain::time::now_ms);
    match start {
        None => "-".into(),
        Some(st) => {
            let ms = (end - st).max(0);
            if ms < 1000 {
                format!("{ms}ms")
            } else if ms < 60_000 {
                format!("{:.1}s", ms as f64 / 1000.0)
            } else {
                format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
            }
        }
    }
}

use more::table;

async fn resolve_server(api: &Api, name_or_id: &str) -> Result<Value> {
    api.get(&format!("/api/v1/servers/{}", enc(name_or_id)))
        .await
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let code = match run(cli).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

async fn run(cli: Cli) -> Result<i32> {
    let api = Api::new(cli.url.clone(), cli.token.clone(), cli.profile.as_deref());
    let out = cli.output;
    match cli.cmd {
        Cmd::Up(args) => up::run(*args).await.map(|_| 0),
        Cmd::Rekey(args) => rekey(*args).await,
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "remora", &mut std::io::stdout());
            Ok(0)
        }
        Cmd::Login { name } => {
            let url = cli.url.clone().unwrap_or_else(|| api.url.clone());
            let token = match cli.token.clone() {
                Some(t) => t,
                None => rpassword::prompt_password("API token: ").context("reading the token")?,
            };
            let probe = Api::new(Some(url.clone()), Some(token.clone()), None);
            probe
                .get("/api/v1/servers")
                .await
                .context("checking the token against the API")?;
            let mut p = client::load_profiles();
            p.profiles
                .insert(name.clone(), client::Profile { url, token });
            p.current = Some(name.clone());
            let path = client::save_profiles(&p)?;
            eprintln!("saved profile `{name}` to {} (mode 0600)", path.display());
            Ok(0)
        }
        Cmd::Servers(c) => servers(&api, out, c).await,
        Cmd::Submit(a) => submit(&api, out, a).await,
        Cmd::Jobs(JobsCmd::List {
            status,
            server,
            search,
            limit,
            page,
        }) => {
            let mut q = format!("/api/v1/jobs?limit={limit}&page={page}");
            if let Some(st) = status {
                q.push_str(&format!("&status={}", enc(&st)));
            }
            if let Some(sv) = server {
                let srv = resolve_server(&api, &sv).await?;
                q.push_str(&format!(
                    "&server_id={}",
                    enc(srv["id"].as_str().unwrap_or(""))
                ));
            }
            if let Some(se) = search {
                q.push_str(&format!("&search={}", enc(&se)));
            }
            let v = api.get(&q).await?;
            if out == Output::Json {
                print_json(&v);
                return Ok(0);
            }
            let names: std::collections::HashMap<String, String> =
                api.get("/api/v1/servers").await?["servers"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|s| {
                                (
                                    s["id"].as_str().unwrap_or("").to_string(),
                                    s["name"].as_str().unwrap_or("").to_string(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
            let mut t = table(&[
                "ID", "STATUS", "SERVER", "COMMAND", "EXIT", "DURATION", "CREATED",
            ]);
            for j in v["jobs"].as_array().cloned().unwrap_or_default() {
                let cmd = j["command"]
                    .as_str()
                    .map(|c| {
                        let mut c = c.to_string();
                        for a in j["args"].as_array().cloned().unwrap_or_default() {
                            c.push(' ');
                            c.push_str(a.as_str().unwrap_or(""));
                        }
                        c
                    })
                    .unwrap_or_else(|| "(script)".into());
                let cmd: String = if cmd.chars().count() > 40 {
                    cmd.chars().take(39).collect::<String>() + "…"
                } else {
                    cmd
                };
                let sid = j["server_id"].as_str().unwrap_or("");
                t.add_row(vec![
                    s(&j["id"]),
                    paint_status(j["status"].as_str().unwrap_or("-")),
                    names.get(sid).cloned().unwrap_or_else(|| sid.to_string()),
                    cmd,
                    s(&j["exit_code"]),
                    duration(&j),
                    more::ago(&j["created_at"]),
                ]);
            }
            println!("{t}");
            let p = &v["pagination"];
            eprintln!(
                "page {} of {} ({} jobs)",
                p["page"],
                p["total_pages"].as_i64().unwrap_or(0).max(1),
                p["total"]
            );
            Ok(0)
        }
        Cmd::Jobs(JobsCmd::Get { id }) => {
            let j = api.get(&format!("/api/v1/jobs/{}", enc(&id))).await?;
            if out == Output::Json {
                print_json(&j);
            } else {
                let mut t = table(&["FIELD", "VALUE"]);
                for k in [
                    "id",
                    "status",
                    "kind",
                    "command",
                    "args",
                    "shell",
                    "server_id",
                    "batch_id",
                    "priority",
                    "timeout",
                    "exit_code",
                    "exit_signal",
                    "error",
                    "attempt",
                    "worker_id",
                    "created_at",
                    "started_at",
                    "finished_at",
                    "stdout_bytes",
                    "stderr_bytes",
                    "truncated",
                ] {
                    t.add_row(vec![k.to_string(), s(&j[k])]);
                }
                t.add_row(vec!["duration".to_string(), duration(&j)]);
                println!("{t}");
            }
            Ok(0)
        }
        Cmd::Logs { id, follow } => {
            if follow {
                let j: remora_domain::Job =
                    serde_json::from_value(api.get(&format!("/api/v1/jobs/{}", enc(&id))).await?)?;
                return follow::follow_jobs(&api, vec![(j.id.clone(), j.server_id.clone())]).await;
            }
            let v = api.get(&format!("/api/v1/jobs/{}/logs", enc(&id))).await?;
            if out == Output::Json {
                print_json(&v);
                return Ok(0);
            }
            use std::io::Write;
            let _ = std::io::stdout().write_all(v["stdout"].as_str().unwrap_or("").as_bytes());
            let _ = std::io::stderr().write_all(v["stderr"].as_str().unwrap_or("").as_bytes());
            if v["truncated"] == json!(true) {
                eprintln!("\n[remora: output truncated at the per-job cap]");
            }
            Ok(0)
        }
        Cmd::Cancel { id } => {
            let v = api
                .post(&format!("/api/v1/jobs/{}/cancel", enc(&id)), &Value::Null)
                .await?;
            if out == Output::Json {
                print_json(&v);
            } else {
                println!(
                    "cancel requested for job {} (status now {})",
                    s(&v["id"]),
                    s(&v["status"])
                );
            }
            Ok(0)
        }
        Cmd::Duplicate {
            id,
            server,
            timeout,
            priority,
            follow,
        } => {
            let mut body = json!({});
            if let Some(v) = server {
                body["server_id"] = json!(v);
            }
            if let Some(v) = timeout {
                body["timeout"] = json!(v);
            }
            if let Some(v) = priority {
                body["priority"] = json!(v);
            }
            let j = api
                .post(&format!("/api/v1/jobs/{}/duplicate", enc(&id)), &body)
                .await?;
            started(&api, out, j, follow).await
        }
        Cmd::Rerun { id, follow } => {
            let j = api
                .post(&format!("/api/v1/jobs/{}/rerun", enc(&id)), &Value::Null)
                .await?;
            started(&api, out, j, follow).await
        }
        Cmd::Batches { id } => more::batch(&api, out == Output::Json, &id).await,
        Cmd::Pem(PemCmd::Upload {
            file,
            passphrase_env,
        }) => more::pem_upload(&api, out == Output::Json, &file, passphrase_env).await,
        Cmd::Pem(PemCmd::List) => more::pem_list(&api, out == Output::Json).await,
        Cmd::Pem(PemCmd::Rm { id }) => {
            api.delete(&format!("/api/v1/pem-files/{}", enc(&id)))
                .await?;
            if out == Output::Json {
                print_json(&json!({ "deleted": id }));
            } else {
                println!("key {id} deleted");
            }
            Ok(0)
        }
        Cmd::Tokens(TokensCmd::List) => more::tokens_list(&api, out == Output::Json).await,
        Cmd::Tokens(TokensCmd::Create { name, role }) => {
            let v = api
                .post("/api/v1/tokens", &json!({ "name": name, "role": role }))
                .await?;
            if out == Output::Json {
                print_json(&v);
            } else {
                println!("{}", s(&v["token"]));
                eprintln!(
                    "token `{}` ({}) created; the secret above is shown only once",
                    s(&v["name"]),
                    s(&v["role"])
                );
            }
            Ok(0)
        }
        Cmd::Tokens(TokensCmd::Revoke { id }) => {
            api.delete(&format!("/api/v1/tokens/{}", enc(&id))).await?;
            if out == Output::Json {
                print_json(&json!({ "revoked": id }));
            } else {
                println!("token {id} revoked");
            }
            Ok(0)
        }
        Cmd::Workers => {
            let v = api.get("/api/v1/workers").await?;
            if out == Output::Json {
                print_json(&v);
                return Ok(0);
            }
            let mut t = table(&[
                "ID",
                "HOST",
                "UP",
                "RUNNING",
                "CONCURRENCY",
                "LAST HEARTBEAT",
                "VERSION",
            ]);
            for w in v["workers"].as_array().cloned().unwrap_or_default() {
                t.add_row(vec![
                    s(&w["id"]),
                    s(&w["hostname"]),
                    paint_status(&s(&w["up"])),
                    s(&w["running"]),
                    s(&w["concurrency"]),
                    more::ago(&w["last_heartbeat_at"]),
                    s(&w["version"]),
                ]);
            }
            println!("{t}");
            Ok(0)
        }
    }
}

/// Print a newly created job, or follow it.
async fn started(api: &Api, out: Output, j: Value, follow: bool) -> Result<i32> {
    if follow {
        return follow::follow_jobs(api, vec![(s(&j["id"]), s(&j["server_id"]))]).await;
    }
    if out == Output::Json {
        print_json(&j);
    } else {
        println!("{}", s(&j["id"]));
    }
    Ok(0)
}

async fn servers(api: &Api, out: Output, c: ServersCmd) -> Result<i32> {
    match c {
        ServersCmd::Add {
            name,
            host,
            port,
            user,
            key_file,
            pem,
            passphrase_env,
            password_stdin,
            tags,
            max_concurrency,
        } => {
            let mut body =
                json!({ "name": name, "hostname": host, "port": port, "user": user, "tags": tags });
            if let Some(m) = max_concurrency {
                body["max_concurrency"] = json!(m);
            }
            if let Some(p) = pem {
                body["pem_file_id"] = json!(p);
                body["auth_type"] = json!("key");
            } else if let Some(f) = key_file {
                let key = std::fs::read_to_string(&f)
                    .with_context(|| format!("reading key file {}", f.display()))?;
                body["private_key"] = json!(key);
                body["auth_type"] = json!("key");
                if let Some(var) = passphrase_env {
                    body["passphrase"] = json!(std::env::var(&var)
                        .with_context(|| format!("environment variable {var} is not set"))?);
                }
            } else if password_stdin {
                body["password"] = json!(more::read_password_stdin()?);
                body["auth_type"] = json!("password");
            } else {
                bail!("give --key-file FILE, --pem ID or --password-stdin");
            }
            let v = api.post("/api/v1/servers", &body).await?;
            if out == Output::Json {
                print_json(&v);
            } else {
                println!("server {} added (id {})", s(&v["name"]), s(&v["id"]));
            }
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
            tags,
            max_concurrency,
            inactive,
            active,
        } => {
            let cur = resolve_server(api, &server).await?;
            let mut body = json!({});
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
                body["private_key"] = json!(std::fs::read_to_string(&f)
                    .with_context(|| format!("reading key file {}", f.display()))?);
            }
            if password_stdin {
                body["password"] = json!(more::read_password_stdin()?);
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
            let v: Value = api
                .send(
                    api.request(
                        reqwest::Method::PUT,
                        &format!("/api/v1/servers/{}", enc(cur["id"].as_str().unwrap_or(""))),
                    )
                    .json(&body),
                )
                .await?
                .json()
                .await?;
            if out == Output::Json {
                print_json(&v);
            } else {
                println!("server {} updated", s(&v["name"]));
            }
            Ok(0)
        }
        ServersCmd::Test { server } => more::server_test(api, out == Output::Json, &server).await,
        ServersCmd::Status { server, all } => {
            if server.is_none() && !all {
                bail!("give a server name, or --all");
            }
            more::server_status(api, out == Output::Json, server, all).await
        }
        ServersCmd::AcceptKey {
            server,
            fingerprint,
        } => more::accept_key(api, out == Output::Json, &server, fingerprint).await,
        ServersCmd::List => {
            let v = api.get("/api/v1/servers").await?;
            if out == Output::Json {
                print_json(&v);
                return Ok(0);
            }
            let mut t = table(&[
                "NAME",
                "ADDRESS",
                "USER",
                "AUTH",
                "TAGS",
                "LAST STATUS",
                "HOST KEY",
            ]);
            for sv in v["servers"].as_array().cloned().unwrap_or_default() {
                let tags: Vec<String> = sv["tags"]
                    .as_array()
                    .map(|a| a.iter().map(s).collect())
                    .unwrap_or_default();
                t.add_row(vec![
                    s(&sv["name"]),
                    format!("{}:{}", s(&sv["hostname"]), s(&sv["port"])),
                    s(&sv["user"]),
                    s(&sv["auth_type"]),
                    tags.join(","),
                    paint_status(&s(&sv["last_status"])),
                    s(&sv["host_key_fingerprint"]),
                ]);
            }
            println!("{t}");
            Ok(0)
        }
        ServersCmd::Get { server } => {
            let v = resolve_server(api, &server).await?;
            if out == Output::Json {
                print_json(&v);
            } else {
                let mut t = table(&["FIELD", "VALUE"]);
                for k in [
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
                    "host_key_fingerprint",
                    "last_status",
                    "created_at",
                ] {
                    t.add_row(vec![k.to_string(), s(&v[k])]);
                }
                println!("{t}");
            }
            Ok(0)
        }
        ServersCmd::Rm { server } => {
            let v = resolve_server(api, &server).await?;
            api.delete(&format!(
                "/api/v1/servers/{}",
                enc(v["id"].as_str().unwrap_or(""))
            ))
            .await?;
            if out == Output::Json {
                print_json(&json!({ "deleted": v["id"] }));
            } else {
                println!("server {} deleted", s(&v["name"]));
            }
            Ok(0)
        }
    }
}

async fn submit(api: &Api, out: Output, a: SubmitArgs) -> Result<i32> {
    let mut body = json!({});
    match (a.servers.len(), &a.tag) {
        (0, None) => bail!("give --server NAME (repeatable) or --tag TAG"),
        (_, Some(_)) if !a.servers.is_empty() => bail!("give either --server or --tag, not both"),
        (1, None) => body["server_id"] = json!(a.servers[0]),
        (_, None) => body["server_ids"] = json!(a.servers),
        (_, Some(t)) => body["tag"] = json!(t),
    }
    if let Some(t) = a.timeout {
        body["timeout"] = json!(t);
    }
    if let Some(p) = a.priority {
        body["priority"] = json!(p);
    }
    let path = if let Some(script) = &a.script {
        let text = if script == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the script from stdin")?;
            s
        } else {
            std::fs::read_to_string(script).with_context(|| format!("reading script {script}"))?
        };
        body["script"] = json!(text);
        body["args"] = json!(a.command);
        if let Some(sh) = &a.shell {
            body["shell"] = json!(sh);
        }
        "/api/v1/jobs/script"
    } else {
        let Some((cmd, args)) = a.command.split_first() else {
            bail!("give the command after `--`, e.g. `remora submit --server web1 -- uptime`");
        };
        body["command"] = json!(cmd);
        body["args"] = json!(args);
        "/api/v1/jobs"
    };
    let v = api.post(path, &body).await?;
    let jobs: Vec<Value> = match v["jobs"].as_array() {
        Some(list) => list.clone(),
        None => vec![v.clone()],
    };
    if !a.follow {
        if out == Output::Json {
            print_json(&v);
        } else {
            for j in &jobs {
                println!("{}", s(&j["id"]));
            }
        }
        return Ok(0);
    }
    let mut names = std::collections::HashMap::new();
    if jobs.len() > 1 {
        if let Ok(list) = api.get("/api/v1/servers").await {
            for sv in list["servers"].as_array().cloned().unwrap_or_default() {
                names.insert(s(&sv["id"]), s(&sv["name"]));
            }
        }
    }
    let targets = jobs
        .iter()
        .map(|j| {
            let sid = s(&j["server_id"]);
            (s(&j["id"]), names.get(&sid).cloned().unwrap_or(sid))
        })
        .collect();
    follow::follow_jobs(api, targets).await
}
