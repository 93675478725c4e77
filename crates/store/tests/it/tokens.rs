//! API tokens: insert, lookup by hash, unique hashes.

use remora_store::{Store, StoreError};

async fn tokens(s: &Store) {
    let tid = s.insert_token("t", "hash1", "admin").await.unwrap();
    assert_eq!(
        s.find_token("hash1").await.unwrap(),
        Some((tid, "admin".to_string()))
    );
    assert!(s.find_token("nope").await.unwrap().is_none());
    assert!(matches!(
        s.insert_token("t2", "hash1", "admin").await,
        Err(StoreError::Conflict)
    ));
}
on_both!(tokens);
