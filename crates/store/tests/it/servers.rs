//! Servers: insert, unique names, reads, host-key pinning, status, update and delete.

use crate::server;
use remora_store::{Store, StoreError};

async fn servers(s: &Store) {
    let a = s.insert_server(&server("alpha")).await.unwrap();
    assert!(a.has_password && !a.has_private_key);
    assert_eq!(a.tags, vec!["web".to_string()]);
    assert!(matches!(
        s.insert_server(&server("alpha")).await,
        Err(StoreError::Conflict { constraint }) if constraint == "servers_name_key"
    ));
    let b = s.insert_server(&server("beta")).await.unwrap();
    assert_eq!(s.list_servers().await.unwrap().len(), 2);
    assert_eq!(
        s.get_server_by_name("beta").await.unwrap().unwrap().id,
        b.id
    );
    assert!(s.get_server("nope").await.unwrap().is_none());
    assert_eq!(
        s.pin_host_key(&a.id, "SHA256:one")
            .await
            .unwrap()
            .as_deref(),
        Some("SHA256:one")
    );
    assert_eq!(
        s.pin_host_key(&a.id, "SHA256:two")
            .await
            .unwrap()
            .as_deref(),
        Some("SHA256:one"),
        "pinning never overwrites"
    );
    assert!(s.set_host_key(&a.id, Some("SHA256:two")).await.unwrap());
    assert_eq!(
        s.get_server(&a.id)
            .await
            .unwrap()
            .unwrap()
            .host_key_fingerprint
            .as_deref(),
        Some("SHA256:two")
    );
    s.set_server_status(&a.id, "reachable").await.unwrap();
    let mut upd = server("alpha2");
    upd.max_concurrency = 1;
    assert!(s.update_server(&a.id, &upd).await.unwrap());
    assert_eq!(s.get_server(&a.id).await.unwrap().unwrap().name, "alpha2");

    assert!(s.delete_server(&b.id).await.unwrap());
    assert!(!s.delete_server(&b.id).await.unwrap());
}
on_both!(servers);
