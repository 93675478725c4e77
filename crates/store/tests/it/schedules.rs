//! Schedules: CRUD, the due-time claim (exactly once across two stores on one database), run
//! history, busy detection, and template jobs carrying their origin.

use remora_domain::schedule::Overlap;
use remora_store::{JobOrigin, RunStatus, ScheduleRow, Store};

fn schedule(template_id: &str, name: &str, due: i64) -> ScheduleRow {
    ScheduleRow {
        id: remora_domain::new_id(),
        name: name.into(),
        template_id: template_id.into(),
        params_enc: Some(vec![9, 9]),
        cron: "* * * * *".into(),
        timezone: "UTC".into(),
        enabled: true,
        overlap: Overlap::Skip,
        catch_up: false,
        jitter_secs: 0,
        next_due_at: Some(due),
        next_run_at: Some(due),
        created_at: 1,
        updated_at: 1,
    }
}

async fn lifecycle(s: &Store) {
    let t = s
        .insert_template(
            "t",
            &serde_json::from_str(r#"{"command": "true"}"#).unwrap(),
        )
        .await
        .unwrap();
    let sc = schedule(&t.id, "every-minute", 60_000);
    s.insert_schedule(&sc).await.unwrap();
    assert_eq!(s.get_schedule("every-minute").await.unwrap().unwrap(), sc);
    assert!(matches!(
        s.delete_template(&t.id).await,
        Err(remora_store::StoreError::Conflict { .. })
    ));
    assert_eq!(s.due_schedules(59_999, 10).await.unwrap().len(), 0);
    assert_eq!(s.due_schedules(60_000, 10).await.unwrap().len(), 1);

    // Claim once; the same due time again loses.
    assert!(s
        .claim_schedule_due(
            &sc.id,
            60_000,
            Some(120_000),
            Some(120_500),
            60_000,
            RunStatus::Firing,
            None
        )
        .await
        .unwrap());
    assert!(!s
        .claim_schedule_due(
            &sc.id,
            60_000,
            Some(120_000),
            Some(120_500),
            60_000,
            RunStatus::Firing,
            None
        )
        .await
        .unwrap());
    let now = s.get_schedule(&sc.id).await.unwrap().unwrap();
    assert_eq!(
        (now.next_due_at, now.next_run_at),
        (Some(120_000), Some(120_500))
    );
    assert!(
        s.schedule_busy(&sc.id).await.unwrap(),
        "a firing run counts as busy"
    );

    // Jobs of the run carry the origin; while queued the schedule is busy.
    let srv = crate::unlimited_server(s, "a").await;
    let j = crate::job(&srv.id, 5, "true");
    let origin = JobOrigin {
        template_id: t.id.clone(),
        template_version: 1,
        schedule_id: Some(sc.id.clone()),
        params_enc: Some(vec![1, 2, 3]),
    };
    s.insert_template_jobs(std::slice::from_ref(&j), &origin)
        .await
        .unwrap();
    assert_eq!(s.job_origin(&j.id).await.unwrap().unwrap(), origin);
    s.finish_schedule_run(
        &sc.id,
        60_000,
        RunStatus::Started,
        std::slice::from_ref(&j.id),
        None,
        None,
    )
    .await
    .unwrap();
    assert!(s.schedule_busy(&sc.id).await.unwrap(), "its job is queued");
    s.request_cancel(&j.id).await.unwrap();
    assert!(!s.schedule_busy(&sc.id).await.unwrap(), "its job is final");

    // A pending run is taken once.
    assert!(s
        .claim_schedule_due(
            &sc.id,
            120_000,
            Some(180_000),
            Some(180_000),
            120_000,
            RunStatus::Pending,
            None
        )
        .await
        .unwrap());
    assert_eq!(s.pending_schedule_runs(10).await.unwrap().len(), 1);
    assert!(s
        .move_schedule_run(&sc.id, 120_000, RunStatus::Pending, RunStatus::Firing)
        .await
        .unwrap());
    assert!(!s
        .move_schedule_run(&sc.id, 120_000, RunStatus::Pending, RunStatus::Firing)
        .await
        .unwrap());
    let runs = s.list_schedule_runs(&sc.id, 10).await.unwrap();
    assert_eq!(
        runs.iter()
            .map(|r| (r.due_at, r.status.as_str()))
            .collect::<Vec<_>>(),
        [(120_000, "firing"), (60_000, "started")]
    );
    assert_eq!(runs[1].job_ids, [j.id.clone()]);

    // Paused: not due, and a claim fails.
    let mut paused = s.get_schedule(&sc.id).await.unwrap().unwrap();
    paused.enabled = false;
    assert!(s.update_schedule(&paused).await.unwrap());
    assert!(s.due_schedules(i64::MAX, 10).await.unwrap().is_empty());
    assert!(!s
        .claim_schedule_due(
            &sc.id,
            180_000,
            Some(240_000),
            Some(240_000),
            180_000,
            RunStatus::Firing,
            None
        )
        .await
        .unwrap());
    assert!(s.delete_schedule(&sc.id).await.unwrap());
    assert!(s.list_schedule_runs(&sc.id, 10).await.unwrap().is_empty());
}
on_both!(lifecycle);

/// Two stores (as two API instances) race for each of 50 due times: every due time is won
/// exactly once.
async fn race(a: &Store, b: &Store) {
    let t = a
        .insert_template(
            "t",
            &serde_json::from_str(r#"{"command": "true"}"#).unwrap(),
        )
        .await
        .unwrap();
    let sc = schedule(&t.id, "race", 0);
    a.insert_schedule(&sc).await.unwrap();
    let mut wins = [0usize; 2];
    for i in 0..50i64 {
        let due = i * 1000;
        let claim = |s: &Store| {
            let s = s.clone();
            let id = sc.id.clone();
            async move {
                s.claim_schedule_due(
                    &id,
                    due,
                    Some(due + 1000),
                    Some(due + 1000),
                    due,
                    RunStatus::Started,
                    None,
                )
                .await
                .unwrap()
            }
        };
        let (x, y) = tokio::join!(tokio::spawn(claim(a)), tokio::spawn(claim(b)));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(x ^ y, "due {due}: exactly one instance wins (a={x}, b={y})");
        wins[usize::from(y)] += 1;
    }
    let runs = a.list_schedule_runs(&sc.id, 100).await.unwrap();
    assert_eq!(runs.len(), 50);
    eprintln!("wins a/b: {wins:?}");
}

#[tokio::test]
async fn exactly_once_on_sqlite() {
    let d = tempfile::tempdir().unwrap();
    let url = remora_store::default_url(d.path());
    let a = Store::connect(&url).await.unwrap();
    let b = Store::connect(&url).await.unwrap();
    race(&a, &b).await;
}

#[tokio::test]
async fn exactly_once_on_postgres() {
    let Some(db) = remora_testkit::pg::database().unwrap() else {
        eprintln!("skipped: REMORA_TEST_PG_URL is not set");
        return;
    };
    let a = Store::connect(&db.url).await.unwrap();
    let b = Store::connect(&db.url).await.unwrap();
    race(&a, &b).await;
    a.close().await;
    b.close().await;
}
