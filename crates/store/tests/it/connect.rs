//! Connecting: URLs, migrations applied once (also by processes starting together), reopen, ping.

use crate::server;
use remora_store::{Store, StoreError};

#[tokio::test]
async fn migrations_are_idempotent_on_reopen() {
    let d = tempfile::tempdir().unwrap();
    let url = remora_store::default_url(d.path());
    let s = Store::connect(&url).await.unwrap();
    s.insert_server(&server("x")).await.unwrap();
    s.close().await;
    let s = Store::connect(&url).await.unwrap();
    assert_eq!(s.list_servers().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_starting_together_migrate_once() {
    let d = tempfile::tempdir().unwrap();
    let url = remora_store::default_url(d.path());
    let mut handles = Vec::new();
    for _ in 0..6 {
        let url = url.clone();
        handles.push(tokio::spawn(async move {
            Store::connect(&url).await.map(|_| ())
        }));
    }
    for h in handles {
        h.await
            .unwrap()
            .expect("a concurrent start failed to open the database");
    }
}

#[tokio::test]
async fn ping_and_bad_urls() {
    let (s, _d) = crate::sqlite().await;
    s.ping().await.unwrap();
    assert!(matches!(
        Store::connect("mysql://localhost/remora").await,
        Err(StoreError::BadUrl(_))
    ));
}
