//! Notifications: targets and filters; each finished job dispatched once however many dispatchers race; deliveries claimed once, retried, given up, redelivered.

use crate::{job, unlimited_server};
use remora_domain::JobStatus;
use remora_store::notifications::{job_event, AttemptOutcome};
use remora_store::{DeliveryState, NewTarget, NotifyEvent, Store, TargetKind};

fn target(name: &str, events: &[&str]) -> NewTarget {
    NewTarget {
        name: name.into(),
        kind: Some(TargetKind::Webhook),
        url: Some("http://127.0.0.1:9/hook".into()),
        format: "json".into(),
        secret_enc: Some(vec![9, 9]),
        events: events.iter().map(|s| s.to_string()).collect(),
        enabled: true,
        ..Default::default()
    }
}

fn ev_of(j: &remora_domain::Job, tags: &[&str]) -> Vec<NotifyEvent> {
    job_event(j.status)
        .map(|e| NotifyEvent {
            event: e.into(),
            key: format!("{e}:{}", j.id),
            payload: serde_json::json!({ "event": e, "job": j.id }),
            tags: tags.iter().map(|s| s.to_string()).collect(),
            status: Some(j.status.as_str().into()),
            template: None,
        })
        .into_iter()
        .collect()
}

async fn targets_crud_and_filters(s: &Store) {
    let t = s
        .insert_target(&target("ops", &["job.failed"]))
        .await
        .unwrap();
    assert!(t.has_secret);
    assert!(matches!(
        s.insert_target(&target("ops", &["job.failed"])).await,
        Err(remora_store::StoreError::Conflict { .. })
    ));
    let mut upd = target("ops2", &["job.failed", "job.timed_out"]);
    upd.secret_enc = None;
    upd.filter_tags = vec!["prod".into()];
    let t2 = s.update_target(&t.id, &upd).await.unwrap().unwrap();
    assert_eq!(t2.name, "ops2");
    assert!(t2.has_secret, "an update without a secret keeps it");
    let ev = |tags: &[&str], event: &str| NotifyEvent {
        event: event.into(),
        key: "k".into(),
        payload: serde_json::json!({}),
        tags: tags.iter().map(|s| s.to_string()).collect(),
        status: Some("failed".into()),
        template: None,
    };
    assert!(t2.matches(&ev(&["web", "prod"], "job.failed")));
    assert!(!t2.matches(&ev(&["web"], "job.failed")), "tag filter");
    assert!(
        !t2.matches(&ev(&["prod"], "job.completed")),
        "not subscribed"
    );
    let mut t3 = t2.clone();
    t3.filter_templates = vec!["deploy".into()];
    assert!(
        !t3.matches(&ev(&["prod"], "job.failed")),
        "a template filter needs a template"
    );
    t3.filter_statuses = vec!["timed_out".into()];
    t3.filter_templates.clear();
    assert!(!t3.matches(&ev(&["prod"], "job.failed")), "status filter");
    assert_eq!(s.list_targets().await.unwrap().len(), 1);
    assert!(s.delete_target(&t.id).await.unwrap());
    assert!(s.get_target(&t.id).await.unwrap().is_none());
}
on_both!(targets_crud_and_filters);

async fn each_final_is_dispatched_once(s: &Store) {
    let a = unlimited_server(s, "alpha").await;
    let t = s
        .insert_target(&target("ops", &["job.failed", "job.completed"]))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..20 {
        let j = job(&a.id, 1000 + i, "x");
        s.insert_job(&j).await.unwrap();
        let st = if i % 2 == 0 {
            JobStatus::Failed
        } else {
            JobStatus::Completed
        };
        s.force_finish(&j.id, st, "e", "c").await.unwrap();
        ids.push(j.id);
    }
    let running = job(&a.id, 5000, "y");
    s.insert_job(&running).await.unwrap();
    let pending = s.undispatched_jobs(100).await.unwrap();
    assert_eq!(pending.len(), 20, "only finished jobs");
    let targets = s.list_targets().await.unwrap();
    // Four dispatchers race over the same jobs.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (s, jobs, targets) = (s.clone(), pending.clone(), targets.clone());
        tasks.push(tokio::spawn(async move {
            s.dispatch_jobs(&jobs, &targets, 86_400_000, |j| ev_of(j, &[]))
                .await
                .unwrap()
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    claimed.sort();
    ids.sort();
    assert_eq!(claimed, ids, "every job claimed by exactly one dispatcher");
    assert!(s.undispatched_jobs(100).await.unwrap().is_empty());
    let d = s.list_deliveries(&t.id, 100).await.unwrap();
    assert_eq!(d.len(), 20, "one delivery per job");
    // The same event reported again is not delivered twice.
    let again = ev_of(&pending[0], &[]).remove(0);
    assert_eq!(s.notify_event(&again, 1000).await.unwrap(), 0);
}
on_both!(each_final_is_dispatched_once);

async fn deliveries_are_claimed_once_retried_and_redelivered(s: &Store) {
    let t = s
        .insert_target(&target("ops", &["worker.down"]))
        .await
        .unwrap();
    let ev = NotifyEvent {
        event: "worker.down".into(),
        key: "worker.down:w1:1".into(),
        payload: serde_json::json!({"event": "worker.down"}),
        tags: vec![],
        status: None,
        template: None,
    };
    assert_eq!(s.notify_event(&ev, 60_000).await.unwrap(), 1);
    // Two instances claim at once: one gets it.
    let (a, b) = tokio::join!(
        s.claim_deliveries("a", 60_000, 10),
        s.claim_deliveries("b", 60_000, 10)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 1, "claimed once");
    let (me, d) = if a.is_empty() {
        ("b", &b[0])
    } else {
        ("a", &a[0])
    };
    assert_eq!(d.attempt, 1);
    assert_eq!(d.target.id, t.id);
    assert_eq!(d.secret_enc.as_deref(), Some(&[9u8, 9][..]));
    assert!(
        s.claim_deliveries("c", 60_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "held"
    );
    // 500: retry right away (retry_at now).
    let now = remora_domain::time::now_ms();
    let fail = AttemptOutcome {
        status_code: Some(500),
        latency_ms: 3,
        error: Some("HTTP 500".into()),
        delivered: false,
        retry_at: Some(now),
    };
    assert!(
        !s.record_attempt(&d.id, "intruder", 1, &fail).await.unwrap(),
        "only the claimer"
    );
    assert!(s.record_attempt(&d.id, me, 1, &fail).await.unwrap());
    let d2 = s.claim_deliveries("c", 60_000, 10).await.unwrap();
    assert_eq!(d2.len(), 1);
    assert_eq!(d2[0].attempt, 2);
    let ok = AttemptOutcome {
        status_code: Some(204),
        latency_ms: 2,
        error: None,
        delivered: true,
        retry_at: None,
    };
    assert!(s.record_attempt(&d.id, "c", 2, &ok).await.unwrap());
    let log = s.list_deliveries(&t.id, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].state, DeliveryState::Delivered);
    assert!(log[0].delivered_at.is_some());
    let codes: Vec<_> = log[0]
        .log
        .iter()
        .map(|a| (a.attempt, a.status_code))
        .collect();
    assert_eq!(codes, [(1, Some(500)), (2, Some(204))]);
    assert!(s
        .claim_deliveries("c", 60_000, 10)
        .await
        .unwrap()
        .is_empty());
    // Redelivery: due again now.
    assert!(s.redeliver(&t.id, &d.id, 60_000).await.unwrap());
    assert!(!s.redeliver("other-target", &d.id, 60_000).await.unwrap());
    let d3 = s.claim_deliveries("c", 60_000, 10).await.unwrap();
    assert_eq!(d3.len(), 1);
    assert_eq!(d3[0].attempt, 3);
    // Giving up.
    let give_up = AttemptOutcome {
        retry_at: None,
        ..fail.clone()
    };
    s.record_attempt(&d.id, "c", 3, &give_up).await.unwrap();
    assert_eq!(
        s.list_deliveries(&t.id, 10).await.unwrap()[0].state,
        DeliveryState::Failed
    );
    // A lease that ran out is claimable by another instance.
    assert!(s.redeliver(&t.id, &d.id, 60_000).await.unwrap());
    assert_eq!(s.claim_deliveries("x", -1, 10).await.unwrap().len(), 1);
    assert_eq!(
        s.claim_deliveries("y", 60_000, 10).await.unwrap().len(),
        1,
        "x's lease expired"
    );
}
on_both!(deliveries_are_claimed_once_retried_and_redelivered);
