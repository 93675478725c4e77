use anyhow::Context;
use remora_worker::config::WorkerArgs;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: WorkerArgs = remora_service::parse_args();
    remora_service::init_tracing(&args.log_format);
    args.worker.check_open_files();
    remora_netqueue::exposure::check_connect_list(&args.queue_addr, args.queue_token.as_deref())?;
    let (store, vault) = args.store.open().await?;
    let queue =
        remora_netqueue::Client::connect_lazy_with(&args.queue_addr, args.queue_client_config())
            .await?;
    let metrics = match args.metrics_addr.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("binding the metrics address {a}"))?,
        ),
        None => None,
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    {
        let s = shutdown.clone();
        tokio::spawn(async move {
            remora_service::wait_for_signal().await;
            tracing::info!("shutdown signal received; draining");
            s.cancel();
        });
    }
    remora_worker::run_with(store, vault, queue, args.config(), metrics, shutdown).await
}
