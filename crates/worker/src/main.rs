use clap::Parser;
use remora_worker::config::WorkerArgs;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = WorkerArgs::parse();
    remora_store::config::init_tracing(&args.log_format);
    let (store, vault) = args.store.open().await?;
    let queue = remora_netqueue::client::Client::connect(&args.queue_addr, args.queue_token.clone()).await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    {
        let s = shutdown.clone();
        tokio::spawn(async move {
            remora_worker::config::wait_for_signal().await;
            tracing::info!("shutdown signal received; draining");
            s.cancel();
        });
    }
    remora_worker::run(store, vault, queue, args.config(), shutdown).await
}
