//! Audit log: entries written and listed newest first, up to a limit.

use remora_store::Store;

async fn audit(s: &Store) {
    s.audit(Some("tok"), "server.create", "server", Some("s1"), None)
        .await
        .unwrap();
    s.audit(None, "token.revoke", "token", None, Some("by admin"))
        .await
        .unwrap();
    let all = s.list_audit(10).await.unwrap();
    assert_eq!(all.len(), 2);
    let create = all.iter().find(|e| e.action == "server.create").unwrap();
    assert_eq!(
        (
            create.token_id.as_deref(),
            create.object_type.as_str(),
            create.object_id.as_deref(),
            create.detail.as_deref()
        ),
        (Some("tok"), "server", Some("s1"), None)
    );
    assert!(
        all[0].created_at >= all[1].created_at,
        "newest first: {all:?}"
    );
    assert_eq!(s.list_audit(1).await.unwrap().len(), 1);
}
on_both!(audit);
