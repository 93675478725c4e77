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

async fn list_page_filters_counts_and_pages_in_sql(s: &Store) {
    use remora_store::{NewServer, ServerQuery, ServerState};
    let mk = |name: &str, tags: &[&str], active: bool| NewServer {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        is_active: active,
        ..crate::server(name)
    };
    let web1 = s
        .insert_server(&mk("web-01", &["web", "eu"], true))
        .await
        .unwrap();
    let web2 = s
        .insert_server(&mk("web-02", &["web"], false))
        .await
        .unwrap();
    let db = s
        .insert_server(&mk("db-01", &["db", "web-x"], true))
        .await
        .unwrap();
    s.insert_server(&mk("Cache_1", &["Web"], true))
        .await
        .unwrap();
    s.set_server_status(&web1.id, "ok").await.unwrap();
    s.set_server_status(&db.id, "auth_failed").await.unwrap();
    let q = |f: ServerQuery| async move {
        let p = s.list_servers_page(&f).await.unwrap();
        let names: Vec<String> = p.servers.iter().map(|x| x.name.clone()).collect();
        (p.total, p.active, names)
    };
    // No filter: every server by name.
    assert_eq!(
        q(ServerQuery::default()).await,
        (
            4,
            3,
            vec![
                "Cache_1".into(),
                "db-01".into(),
                "web-01".into(),
                "web-02".into()
            ]
        )
    );
    // Paging keeps the total.
    let page = |offset, limit| ServerQuery {
        offset,
        limit: Some(limit),
        ..Default::default()
    };
    assert_eq!(
        q(page(1, 2)).await,
        (4, 3, vec!["db-01".into(), "web-01".into()])
    );
    assert_eq!(q(page(4, 2)).await.2, Vec::<String>::new());
    // A tag is matched exactly: not `web-x`, not `Web`.
    let tag = |t: &str| ServerQuery {
        tag: Some(t.into()),
        ..Default::default()
    };
    assert_eq!(
        q(tag("web")).await,
        (2, 1, vec!["web-01".into(), "web-02".into()])
    );
    assert_eq!(q(tag("Web")).await.2, vec!["Cache_1".to_string()]);
    assert_eq!(q(tag("we")).await.0, 0);
    // Search: name, address, tags, id; case-insensitive; `_` and `%` literal.
    let search = |t: &str| ServerQuery {
        q: Some(t.into()),
        ..Default::default()
    };
    assert_eq!(q(search("WEB-0")).await.0, 2);
    assert_eq!(q(search("u@127.0.0.1:22")).await.0, 4);
    assert_eq!(q(search("eu")).await.2, vec!["web-01".to_string()]);
    assert_eq!(
        q(search("db web-x")).await.2,
        vec!["db-01".to_string()],
        "tags as words"
    );
    assert_eq!(
        q(search(&web2.id[web2.id.len() - 12..])).await.2,
        vec!["web-02".to_string()]
    );
    assert_eq!(q(search("e_1")).await.2, vec!["Cache_1".to_string()]);
    assert_eq!(q(search("%")).await.0, 0);
    // Status.
    let st = |x| ServerQuery {
        status: Some(x),
        ..Default::default()
    };
    assert_eq!(
        q(st(ServerState::Reachable)).await.2,
        vec!["web-01".to_string()]
    );
    assert_eq!(
        q(st(ServerState::Unreachable)).await.2,
        vec!["db-01".to_string()]
    );
    assert_eq!(
        q(st(ServerState::Unchecked)).await.2,
        vec!["Cache_1".to_string(), "web-02".into()]
    );
    assert_eq!(
        q(st(ServerState::Inactive)).await,
        (1, 0, vec!["web-02".into()])
    );
    // Combined.
    let both = ServerQuery {
        tag: Some("web".into()),
        status: Some(ServerState::Unchecked),
        q: Some("02".into()),
        ..Default::default()
    };
    assert_eq!(q(both).await.2, vec!["web-02".to_string()]);
    let (n, tags) = s.server_tags().await.unwrap();
    assert_eq!(n, 4);
    assert_eq!(tags, vec!["Web", "db", "eu", "web", "web-x"]);
}
on_both!(list_page_filters_counts_and_pages_in_sql);
