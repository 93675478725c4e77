//! Templates: versions on every edit, lookup by id or name, delete guarded by schedules; triggers.

use remora_domain::template::TemplateDef;
use remora_store::{Store, StoreError};

fn def(cmd: &str) -> TemplateDef {
    serde_json::from_value(serde_json::json!({
        "command": cmd,
        "params": [{"name": "who", "type": "string", "default": "world"}],
        "targets": {"tag": "web"},
        "timeout": 30
    }))
    .unwrap()
}

async fn versions(s: &Store) {
    let t = s.insert_template("hello", &def("echo v1")).await.unwrap();
    assert_eq!((t.version, t.current_version), (1, 1));
    assert!(matches!(
        s.insert_template("hello", &def("x")).await,
        Err(StoreError::Conflict { .. })
    ));
    let t2 = s
        .update_template(&t.id, None, &def("echo v2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (t2.version, t2.def.command.as_deref()),
        (2, Some("echo v2"))
    );
    let t3 = s
        .update_template(&t.id, Some("hello2"), &def("echo v3"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((t3.version, t3.name.as_str()), (3, "hello2"));
    // An old version stays readable, by id or name.
    let v1 = s.get_template("hello2", Some(1)).await.unwrap().unwrap();
    assert_eq!(
        (v1.version, v1.current_version, v1.def.command.as_deref()),
        (1, 3, Some("echo v1"))
    );
    assert_eq!(v1.def, def("echo v1"));
    assert!(s.get_template(&t.id, Some(9)).await.unwrap().is_none());
    let all: Vec<i64> = s
        .list_template_versions(&t.id)
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(all, [3, 2, 1]);
    s.insert_template("another", &def("true")).await.unwrap();
    let names: Vec<String> = s
        .list_templates()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["another", "hello2"]);
    assert!(s
        .update_template("nope", None, &def("x"))
        .await
        .unwrap()
        .is_none());

    // Triggers: looked up by hash while live, revoked once, gone with the template.
    let tr = s.insert_trigger(&t.id, "ci", "h1").await.unwrap();
    assert_eq!(s.use_trigger("h1").await.unwrap().unwrap().id, tr.id);
    assert!(s.list_triggers(&t.id).await.unwrap()[0]
        .last_used_at
        .is_some());
    assert!(!s.revoke_trigger("other-template", &tr.id).await.unwrap());
    assert!(s.revoke_trigger(&t.id, &tr.id).await.unwrap());
    assert!(!s.revoke_trigger(&t.id, &tr.id).await.unwrap());
    assert!(
        s.use_trigger("h1").await.unwrap().is_none(),
        "a revoked token is refused"
    );

    assert!(s.delete_template(&t.id).await.unwrap());
    assert!(s.get_template(&t.id, Some(1)).await.unwrap().is_none());
    assert!(s.list_triggers(&t.id).await.unwrap().is_empty());
    assert!(!s.delete_template(&t.id).await.unwrap());
}
on_both!(versions);
