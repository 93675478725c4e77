use remora_api::config::ApiArgs;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: ApiArgs = remora_service::parse_args();
    remora_service::init_tracing(&args.log_format);
    remora_service::raise_open_file_limit();
    remora_netqueue::exposure::check_connect_list(&args.queue_addr, args.queue_token.as_deref())?;
    let (store, vault) = args.store.open().await?;
    // The token itself is never printed: stderr ends up in docker's and
    // journald's logs. Say where to read it.
    if remora_api::auth::seed_admin(&store, args.admin_token.as_deref(), &args.store.data_dir)
        .await?
        .is_some()
    {
        eprintln!(
            "{}",
            remora_api::auth::generated_token_notice(&args.store.data_dir)
        );
    }
    let queue =
        remora_netqueue::Client::connect_lazy_with(&args.queue_addr, args.queue_client_config())
            .await?;
    let listener = tokio::net::TcpListener::bind(&args.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind {}: {e}", args.addr))?;
    tracing::info!(addr = %listener.local_addr()?, "remora-api listening");
    let state = remora_api::AppState::new(store, vault, queue, args.config());
    let shutdown = tokio_util::sync::CancellationToken::new();
    {
        let s = shutdown.clone();
        tokio::spawn(async move {
            remora_service::wait_for_signal().await;
            s.cancel();
        });
    }
    remora_api::run(listener, state, shutdown).await
}
