//! Workers: registration, heartbeats, the reaper's stale workers and orphaned jobs, restarts.

use crate::{job, server, unlimited_server};
use remora_domain::JobStatus;
use remora_store::{Claim, Store, WorkerRow};

fn worker(id: &str, now: i64) -> WorkerRow {
    WorkerRow {
        id: id.into(),
        hostname: "h".into(),
        version: "v".into(),
        concurrency: 4,
        running: 0,
        started_at: now,
        last_heartbeat_at: now,
        status: "up".into(),
    }
}

/// A stale worker is marked down once; its running job is orphaned and
/// force-finished once.
async fn reaper(s: &Store) {
    let now = remora_domain::time::now_ms();
    let w = worker("w1", now);
    s.register_worker(&w).await.unwrap();
    s.register_worker(&w).await.unwrap();
    assert!(s.heartbeat_worker("w1", 1, "up").await.unwrap());
    assert!(!s.heartbeat_worker("nope", 1, "up").await.unwrap());
    assert_eq!(s.list_workers().await.unwrap().len(), 1);

    let a = s.insert_server(&server("alpha")).await.unwrap();
    let j2 = job(&a.id, 2000, "echo TWO");
    s.insert_job(&j2).await.unwrap();
    let Claim::Claimed(_) = s.claim_job(&j2.id, "w1").await.unwrap() else {
        panic!("claim j2")
    };
    assert!(s.orphaned_jobs().await.unwrap().is_empty(), "w1 is up");

    let minute = std::time::Duration::from_secs(60);
    assert!(s.mark_silent_workers(minute).await.unwrap().is_empty());
    // The heartbeat is the database's clock: 1 ms later it is older than a zero allowance.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let marked = loop {
        let m = s
            .mark_silent_workers(std::time::Duration::ZERO)
            .await
            .unwrap();
        if !m.is_empty() || std::time::Instant::now() > deadline {
            break m;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(marked, vec!["w1".to_string()]);
    let orphans = s.orphaned_jobs().await.unwrap();
    assert_eq!(orphans, vec![(j2.id.clone(), Some("w1".to_string()))]);
    assert!(s
        .force_finish(&j2.id, JobStatus::Failed, "worker w1 lost", "worker_lost")
        .await
        .unwrap());
    assert!(!s
        .force_finish(&j2.id, JobStatus::Failed, "again", "worker_lost")
        .await
        .unwrap());
    assert!(s.orphaned_jobs().await.unwrap().is_empty());
}
on_both!(reaper);

/// A worker that registers again under its id held no job: what that id
/// still has running failed with `worker_lost`; other workers' jobs stay.
async fn restart_fails_its_running_jobs(s: &Store) {
    let now = remora_domain::time::now_ms();
    s.register_worker(&worker("w1", now)).await.unwrap();
    let srv = unlimited_server(s, "restart").await;
    let mine = job(&srv.id, 1, "sleep 100");
    let other = job(&srv.id, 2, "sleep 100");
    s.insert_jobs(&[mine.clone(), other.clone()]).await.unwrap();
    assert!(matches!(
        s.claim_job(&mine.id, "w1").await.unwrap(),
        Claim::Claimed(_)
    ));
    assert!(matches!(
        s.claim_job(&other.id, "w2").await.unwrap(),
        Claim::Claimed(_)
    ));
    s.register_worker(&worker("w1", now)).await.unwrap();
    let m = s.get_job(&mine.id).await.unwrap().unwrap();
    assert_eq!(
        (m.status, m.error_code.as_deref()),
        (JobStatus::Failed, Some("worker_lost"))
    );
    assert!(m.finished_at.is_some());
    assert_eq!(
        s.get_job(&other.id).await.unwrap().unwrap().status,
        JobStatus::Running
    );
}
on_both!(restart_fails_its_running_jobs);
