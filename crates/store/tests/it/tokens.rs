//! API tokens: insert, lookup by hash, unique hashes, listing and revocation.

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
        Err(StoreError::Conflict { constraint }) if constraint == "api_tokens_token_hash_key"
    ));
    let listed = s.list_tokens().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].name.as_str(),
            listed[0].role.as_str(),
            listed[0].revoked_at
        ),
        ("t", "admin", None)
    );
    assert!(s.revoke_token(&listed[0].id).await.unwrap());
    assert!(
        s.find_token("hash1").await.unwrap().is_none(),
        "a revoked token no longer authenticates"
    );
    assert!(
        !s.revoke_token(&listed[0].id).await.unwrap(),
        "revoked once"
    );
    assert!(s.list_tokens().await.unwrap()[0].revoked_at.is_some());
}
on_both!(tokens);
