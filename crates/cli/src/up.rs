//! `remora up`: queue, API and worker in one process on the embedded
//! default (SQLite under ./data); with `--demo`, also a loopback-only demo
//! SSH host registered as server `local-demo`.

use anyhow::{Context, Result};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    store: remora_store::config::StoreArgs,
    /// API and dashboard address.
    #[arg(long, env = "REMORA_API_ADDR", default_value = "127.0.0.1:8080")]
    addr: String,
    /// Queue address (other workers may connect here).
    #[arg(long, env = "REMORA_QUEUE_ADDR", default_value = "127.0.0.1:9000")]
    queue_addr: String,
    /// Queue token (default: generated for this run).
    #[arg(long, env = "REMORA_QUEUE_TOKEN", hide_env_values = true)]
    queue_token: Option<String>,
    /// Queue fsync policy: always, interval:<ms>, never.
    #[arg(long, env = "REMORA_QUEUE_FSYNC", default_value = "interval:50")]
    queue_fsync: String,
    /// Admin token (default: generated on first start into the data dir).
    #[arg(long, env = "REMORA_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    #[command(flatten)]
    api: remora_api::config::ApiOpts,
    #[command(flatten)]
    worker: remora_worker::config::WorkerOpts,
    /// Also start a demo SSH host on loopback, registered as `local-demo`.
    #[arg(long)]
    demo: bool,
    /// Address of the demo SSH host.
    #[arg(long, env = "REMORA_DEMO_ADDR", default_value = "127.0.0.1:0")]
    demo_addr: String,
    /// `text` or `json`.
    #[arg(long, env = "REMORA_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

fn current_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            std::process::Command::new("id")
                .arg("-un")
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        })
        .unwrap_or_else(|| "root".into())
}

pub async fn run(a: UpArgs) -> Result<()> {
    remora_service::init_tracing(&a.log_format);
    a.worker.check_open_files();
    let (store, vault) = a.store.open().await?;
    let shutdown = CancellationToken::new();

    // Queue.
    let queue_token = a
        .queue_token
        .clone()
        .unwrap_or_else(remora_api::auth::generate_token);
    let fsync = a
        .queue_fsync
        .parse()
        .map_err(|e| anyhow::anyhow!("REMORA_QUEUE_FSYNC: {e}"))?;
    let qcfg = remora_netqueue::ServerConfig {
        data_dir: Some(a.store.data_dir.join("queue")),
        token: Some(queue_token.clone()),
        fsync,
        // The database decides retries; the queue only dead-letters poison messages.
        max_attempts: 1000,
        ..Default::default()
    };
    if a.queue_addr.contains(',') {
        anyhow::bail!(
            "REMORA_QUEUE_ADDR / --queue-addr is a list ({}): `remora up` runs one queue and listens \
             on one address. Lists (with standby queues) are for remora-api and remora-worker",
            a.queue_addr
        );
    }
    let qlistener = tokio::net::TcpListener::bind(&a.queue_addr)
        .await
        .with_context(|| format!("cannot bind the queue address {}", a.queue_addr))?;
    let qaddr = qlistener.local_addr()?.to_string();
    let qsd = shutdown.clone();
    let queue_task = tokio::spawn(async move { remora_netqueue::run(qlistener, qcfg, qsd).await });
    let queue = remora_netqueue::Client::connect(&qaddr, Some(queue_token.clone()))
        .await
        .context("connecting to the in-process queue")?;

    // Admin token.
    let generated =
        remora_api::auth::seed_admin(&store, a.admin_token.as_deref(), &a.store.data_dir).await?;

    // Demo host.
    let mut demo_line = String::new();
    if a.demo {
        let l = tokio::net::TcpListener::bind(&a.demo_addr)
            .await
            .with_context(|| format!("cannot bind the demo host address {}", a.demo_addr))?;
        let host =
            remora_ssh::demo::DemoHost::start(l, &a.store.data_dir, shutdown.clone()).await?;
        let user = current_user();
        let new = remora_store::NewServer {
            name: "local-demo".into(),
            hostname: host.addr.ip().to_string(),
            port: host.addr.port() as i64,
            user: user.clone(),
            auth_type: Some(remora_domain::AuthType::Key),
            private_key_enc: Some(vault.seal(host.client_key.as_bytes())),
            is_active: true,
            tags: vec!["demo".into()],
            max_concurrency: 10,
            ..Default::default()
        };
        let id = match store.get_server_by_name("local-demo").await? {
            Some(s) => {
                store.update_server(&s.id, &new).await?;
                s.id
            }
            None => store.insert_server(&new).await?.id,
        };
        store
            .set_host_key(&id, Some(&host.host_key_fingerprint))
            .await?;
        demo_line = format!("  Demo host:  server `local-demo` at {} — DEMO ONLY: runs commands as `{user}` on this machine, accepts only the key in {}\n", host.addr, a.store.data_dir.join("demo").display());
    }

    // API.
    let listener = tokio::net::TcpListener::bind(&a.addr)
        .await
        .with_context(|| {
            format!(
                "cannot bind the API address {} (is another Remora running? set REMORA_API_ADDR)",
                a.addr
            )
        })?;
    let api_addr = listener.local_addr()?;
    let state = remora_api::AppState::new(store.clone(), vault.clone(), queue.clone(), {
        let mut c = a.api.config();
        c.max_jump_depth = a.worker.max_jump_depth as usize;
        c.key_limits.max_kdf_rounds = a.worker.max_kdf_rounds;
        c
    });
    let api_task = tokio::spawn(remora_api::run(listener, state, shutdown.clone()));

    // Worker.
    let wsd = shutdown.clone();
    let wcfg = a.worker.config();
    let worker_task = tokio::spawn(remora_worker::run(
        store.clone(),
        vault.clone(),
        queue.clone(),
        wcfg,
        wsd,
    ));

    let token_line = match generated {
        Some(t) => format!(
            "  Admin token: {t}\n               (shown once; saved 0600 in {})\n",
            a.store.data_dir.join("admin.token").display()
        ),
        None if a.admin_token.is_some() => {
            "  Admin token: the one in REMORA_ADMIN_TOKEN\n".to_string()
        }
        None => format!(
            "  Admin token: cat {}\n",
            a.store.data_dir.join("admin.token").display()
        ),
    };
    let web = if a.api.web_dir.join("index.html").exists() {
        "dashboard and API"
    } else {
        "API (dashboard not built)"
    };
    eprintln!(
        "\nRemora is up.\n  {web}: http://{api_addr}\n{token_line}  Queue:      {qaddr}\n  Database:   {}\n{demo_line}\nNext:\n  export REMORA_TOKEN=$(cat {})\n  remora submit --server {} --follow -- uname -a\nPress Ctrl-C to stop.\n",
        a.store.url().split('?').next().unwrap_or_default(),
        a.store.data_dir.join("admin.token").display(),
        if a.demo { "local-demo" } else { "<server>" },
    );

    remora_service::wait_for_signal().await;
    eprintln!("stopping…");
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        let _ = worker_task.await;
        let _ = api_task.await;
        let _ = queue_task.await;
    })
    .await;
    Ok(())
}
