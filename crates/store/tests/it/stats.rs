//! Statistics and exports: counts by status, finished jobs per minute, finished jobs by time (keyset pages).

use crate::{job, unlimited_server};
use remora_domain::JobStatus;
use remora_store::{Claim, Finish, Store};

/// Five jobs finished as completed, failed, timed_out, canceled and one
/// left queued; counted per status, per minute, and exported in pages.
async fn stats(s: &Store) {
    let srv = unlimited_server(s, "stats").await;
    let start = remora_domain::time::now_ms();
    let mut finished = Vec::new();
    for (i, st) in [
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::TimedOut,
        JobStatus::Completed,
    ]
    .into_iter()
    .enumerate()
    {
        let j = job(&srv.id, i as i64, "true");
        s.insert_job(&j).await.unwrap();
        assert!(matches!(
            s.claim_job(&j.id, "w").await.unwrap(),
            Claim::Claimed(_)
        ));
        let fin = Finish {
            status: Some(st),
            ..Default::default()
        };
        assert_eq!(s.finish_job(&j.id, "w", &fin).await.unwrap(), Some(st));
        finished.push(j.id);
    }
    let canceled = job(&srv.id, 10, "true");
    let queued = job(&srv.id, 11, "true");
    s.insert_jobs(&[canceled.clone(), queued]).await.unwrap();
    s.request_cancel(&canceled.id).await.unwrap();
    finished.push(canceled.id);

    let mut counts = s.count_jobs_by_status().await.unwrap();
    counts.sort_by_key(|(st, _)| st.as_str());
    assert_eq!(
        counts,
        vec![
            (JobStatus::Canceled, 1),
            (JobStatus::Completed, 2),
            (JobStatus::Failed, 1),
            (JobStatus::Queued, 1),
            (JobStatus::TimedOut, 1),
        ]
    );

    let per_minute = s.throughput(start - 60_000).await.unwrap();
    let sum = |f: fn(&remora_store::MinuteCount) -> i64| per_minute.iter().map(f).sum::<i64>();
    assert_eq!(
        (
            sum(|m| m.completed),
            sum(|m| m.failed),
            sum(|m| m.canceled),
            sum(|m| m.total)
        ),
        (2, 2, 1, 5),
        "failed counts failed and timed_out: {per_minute:?}"
    );
    assert!(per_minute.iter().all(|m| m.minute % 60_000 == 0));
    assert!(s
        .throughput(remora_domain::time::now_ms() + 60_000)
        .await
        .unwrap()
        .is_empty());

    // Exported two at a time after the last (finished_at, id) seen: every
    // finished job once, in order.
    let to = remora_domain::time::now_ms() + 1;
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.finished_between(start - 1, to, after, 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        let last = page.last().unwrap();
        after = Some((last.finished_at.unwrap(), last.id.clone()));
        seen.extend(page.into_iter().map(|j| (j.finished_at.unwrap(), j.id)));
    }
    assert_eq!(seen.len(), 5);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "ordered: {seen:?}");
    let mut ids: Vec<String> = seen.into_iter().map(|(_, id)| id).collect();
    ids.sort();
    finished.sort();
    assert_eq!(ids, finished);
}
on_both!(stats);
