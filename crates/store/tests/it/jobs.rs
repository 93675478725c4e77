//! Jobs: insert and read back, the claim/cancel/finish/requeue lifecycle, batches, and the indexes per-job queries use.

use crate::{job, server, sqlite, three_jobs, unlimited_server};
use remora_domain::JobStatus;
use remora_store::{CancelOutcome, Claim, Finish, NewServer, Store, StoreError};

/// A job's whole life: claimed within its server's `max_concurrency`,
/// canceled (running or queued), finished exactly once, requeued.
async fn lifecycle(s: &Store) {
    let (_, _, [j1, j2, j3]) = three_jobs(s).await;
    assert_eq!(s.get_job(&j1.id).await.unwrap().unwrap(), j1);
    assert!(s.get_job("missing").await.unwrap().is_none());
    assert_eq!(s.queued_jobs(10).await.unwrap().len(), 3);

    // claim honours max_concurrency (1) on server a
    let Claim::Claimed(c1) = s.claim_job(&j1.id, "w1").await.unwrap() else {
        panic!("claim")
    };
    assert_eq!(
        (c1.status, c1.attempt, c1.worker_id.as_deref()),
        (JobStatus::Running, 1, Some("w1"))
    );
    assert_eq!(s.claim_job(&j2.id, "w1").await.unwrap(), Claim::Busy);
    assert_eq!(s.claim_job(&j1.id, "w1").await.unwrap(), Claim::NotQueued);
    assert_eq!(
        s.claim_job("missing", "w1").await.unwrap(),
        Claim::NotQueued
    );
    assert_eq!(s.queued_jobs(10).await.unwrap().len(), 2);

    // cancel: running → requested; finish then turns into canceled, once
    assert_eq!(
        s.request_cancel(&j1.id).await.unwrap(),
        CancelOutcome::Requested
    );
    assert!(s.is_cancel_requested(&j1.id).await.unwrap());
    let fin = Finish {
        status: Some(JobStatus::Completed),
        exit_code: Some(0),
        ..Default::default()
    };
    assert_eq!(
        s.finish_job(&j1.id, "other-worker", &fin).await.unwrap(),
        None,
        "only the holder finishes"
    );
    assert_eq!(
        s.finish_job(&j1.id, "w1", &fin).await.unwrap(),
        Some(JobStatus::Canceled)
    );
    assert_eq!(
        s.finish_job(&j1.id, "w1", &fin).await.unwrap(),
        None,
        "exactly one final status"
    );
    assert_eq!(
        s.request_cancel(&j1.id).await.unwrap(),
        CancelOutcome::AlreadyFinal(JobStatus::Canceled)
    );
    // queued → canceled directly
    assert_eq!(
        s.request_cancel(&j3.id).await.unwrap(),
        CancelOutcome::CanceledQueued
    );
    assert_eq!(s.claim_job(&j3.id, "w1").await.unwrap(), Claim::NotQueued);
    assert_eq!(
        s.request_cancel("missing").await.unwrap(),
        CancelOutcome::NotFound
    );

    // requeue and retry
    let Claim::Claimed(_) = s.claim_job(&j2.id, "w1").await.unwrap() else {
        panic!("claim j2")
    };
    assert!(s.requeue_job(&j2.id, "w1", "connect failed").await.unwrap());
    let Claim::Claimed(again) = s.claim_job(&j2.id, "w1").await.unwrap() else {
        panic!("reclaim")
    };
    assert_eq!(again.attempt, 2);
    let counts = s.count_jobs_by_status().await.unwrap();
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<i64>(), 3);
}
on_both!(lifecycle);

/// A pending cancel turns a completed or failed run into `canceled`, but a
/// timeout stays `timed_out`; without a cancel the worker's status stands.
async fn finish_statuses(s: &Store) {
    let srv = unlimited_server(s, "finish").await;
    for (cancel, reported, stored) in [
        (true, JobStatus::Completed, JobStatus::Canceled),
        (true, JobStatus::Failed, JobStatus::Canceled),
        (true, JobStatus::TimedOut, JobStatus::TimedOut),
        (false, JobStatus::Completed, JobStatus::Completed),
        (false, JobStatus::Failed, JobStatus::Failed),
    ] {
        let j = job(&srv.id, 1, "true");
        s.insert_job(&j).await.unwrap();
        assert!(matches!(
            s.claim_job(&j.id, "w").await.unwrap(),
            Claim::Claimed(_)
        ));
        if cancel {
            assert_eq!(
                s.request_cancel(&j.id).await.unwrap(),
                CancelOutcome::Requested
            );
        }
        let fin = Finish {
            status: Some(reported),
            ..Default::default()
        };
        assert_eq!(
            s.finish_job(&j.id, "w", &fin).await.unwrap(),
            Some(stored),
            "cancel {cancel} reported {reported:?}"
        );
    }
}
on_both!(finish_statuses);

#[tokio::test]
async fn concurrent_claims_respect_max_concurrency() {
    let (s, _d) = sqlite().await;
    let a = s
        .insert_server(&NewServer {
            max_concurrency: 2,
            ..server("c")
        })
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..10 {
        let j = job(&a.id, i, "true");
        s.insert_job(&j).await.unwrap();
        ids.push(j.id);
    }
    let mut handles = Vec::new();
    for id in ids {
        let s = s.clone();
        handles.push(tokio::spawn(
            async move { s.claim_job(&id, "w").await.unwrap() },
        ));
    }
    let mut claimed = 0;
    for h in handles {
        if matches!(h.await.unwrap(), Claim::Claimed(_)) {
            claimed += 1;
        }
    }
    assert_eq!(claimed, 2);
}

/// The queries that run on every job (claim, worker heartbeat, queued scan)
/// read an index made for them, not every job of a server: SQLite's plan
/// for each names that index (no statistics, as in production), with the
/// status written as a literal and bound as a parameter (as the store does).
#[tokio::test]
async fn per_job_queries_use_their_indexes_on_sqlite() {
    use sqlx::{Connection, Row};
    let (s, d) = sqlite().await;
    s.close().await;
    let url = remora_store::default_url(d.path());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for (sql, bound, index) in [
        (
            "SELECT COUNT(*) FROM jobs WHERE server_id = 'x' AND status = 'running'",
            Some("running"),
            "jobs_server_status",
        ),
        (
            "SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at LIMIT 10",
            Some("queued"),
            "jobs_status_created",
        ),
        (
            "SELECT id FROM jobs WHERE worker_id = 'w' AND status = 'running'",
            Some("running"),
            "jobs_worker_status",
        ),
        (
            "SELECT id FROM jobs ORDER BY started_at DESC, id DESC LIMIT 51",
            None,
            "jobs_started",
        ),
    ] {
        let mut variants = vec![(sql.to_string(), None)];
        if let Some(st) = bound {
            variants.push((sql.replace(&format!("'{st}'"), "$1"), Some(st)));
        }
        for (sql, bind) in variants {
            let explain = format!("EXPLAIN QUERY PLAN {sql}");
            let mut q = sqlx::query(&explain);
            if let Some(b) = bind {
                q = q.bind(b);
            }
            let rows = q.fetch_all(&mut c).await.unwrap();
            let plan: Vec<String> = rows.iter().map(|r| r.get::<String, _>(3)).collect();
            assert!(
                plan.iter().any(|p| p.contains(index)),
                "{sql}: plan {plan:?} does not use {index}"
            );
        }
    }
}

/// A batch is inserted in one transaction: all of its jobs, or none.
async fn batch_insert(s: &Store) {
    let srv = s.insert_server(&server("batch")).await.unwrap();
    let b1 = job(&srv.id, 4000, "batch one");
    let b2 = job(&srv.id, 4001, "batch two");
    s.insert_jobs(&[b1.clone(), b2.clone()]).await.unwrap();
    assert_eq!(s.get_job(&b1.id).await.unwrap().unwrap(), b1);
    assert_eq!(s.get_job(&b2.id).await.unwrap().unwrap(), b2);
    let b3 = job(&srv.id, 4002, "batch three");
    assert!(matches!(
        s.insert_jobs(&[b3.clone(), b1.clone()]).await,
        Err(StoreError::Conflict { constraint }) if constraint == "jobs_pkey"
    ));
    assert!(
        s.get_job(&b3.id).await.unwrap().is_none(),
        "a batch that fails part-way leaves nothing"
    );
}
on_both!(batch_insert);

/// The reconciler's paging: every queued job exactly once, oldest first, pages of 3 over 10
/// jobs where several share a `created_at` (the tie is broken by id); running ones are left out.
async fn queued_jobs_page_through_ties(s: &Store) {
    let srv = s.insert_server(&server("paging")).await.unwrap();
    let mut want = Vec::new();
    for i in 0..10 {
        let j = job(&srv.id, 1_000 + (i / 4) as i64, "echo");
        s.insert_job(&j).await.unwrap();
        want.push(j);
    }
    // One claimed: no longer queued.
    assert!(matches!(
        s.claim_job(&want[5].id, "w1").await.unwrap(),
        Claim::Claimed(_)
    ));
    let gone = want.remove(5);
    want.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.queued_jobs_after(after.as_ref(), 3).await.unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.iter().map(|q| q.id.clone()));
        if page.len() < 3 {
            break;
        }
        after = page.last().cloned();
    }
    let want: Vec<String> = want.iter().map(|j| j.id.clone()).collect();
    assert_eq!(seen, want);
    assert!(!seen.contains(&gone.id));
}
on_both!(queued_jobs_page_through_ties);

/// The connection generation (migration 0019) moves on with every change to what a connection
/// is made from, is returned by a claim in the claim's own transaction, and stays put for the
/// status columns checks and jobs write (so a worker's cached targets survive them).
async fn connection_generation_moves_with_connection_settings(s: &Store) {
    let a = unlimited_server(s, "gen-a").await;
    let g0 = s.conn_generation().await.unwrap();
    // A claim returns the generation of its transaction.
    let j = job(&a.id, 1, "echo gen");
    s.insert_job(&j).await.unwrap();
    let (c, g) = s.claim_job_gen(&j.id, "w1").await.unwrap();
    assert!(matches!(c, Claim::Claimed(_)), "{c:?}");
    assert_eq!(g, Some(g0));
    let (c, g) = s.claim_job_gen(&j.id, "w1").await.unwrap();
    assert_eq!((c, g), (Claim::NotQueued, None));

    // Status columns: no move.
    s.set_server_status(&a.id, "reachable").await.unwrap();
    s.set_host_key_presented(&a.id, Some("SHA256:x"))
        .await
        .unwrap();
    assert_eq!(
        s.conn_generation().await.unwrap(),
        g0,
        "status writes moved it"
    );

    // Each change a connection depends on: a move.
    let mut last = g0;
    let mut moved = |what: &str, now: i64| {
        assert!(
            now > last,
            "{what} did not move the generation ({last} → {now})"
        );
        last = now;
    };
    s.pin_host_key(&a.id, "SHA256:pinned").await.unwrap();
    moved("a first-use pin", s.conn_generation().await.unwrap());
    s.set_host_key(&a.id, Some("SHA256:other")).await.unwrap();
    moved("an accepted host key", s.conn_generation().await.unwrap());
    let edited = NewServer {
        port: 2222,
        max_concurrency: 0,
        ..server("gen-a")
    };
    assert!(s.update_server(&a.id, &edited).await.unwrap());
    moved("a server edit", s.conn_generation().await.unwrap());
    let cred = s
        .insert_credential(&remora_store::NewCredential {
            name: "gen-cred".into(),
            kind: "password".into(),
            password_enc: Some(vec![9, 9]),
            ..Default::default()
        })
        .await
        .unwrap();
    moved("a new credential", s.conn_generation().await.unwrap());
    assert!(s
        .update_credential(
            &cred.id,
            &remora_store::NewCredential {
                name: "gen-cred".into(),
                kind: "password".into(),
                password_enc: Some(vec![8, 8]),
                ..Default::default()
            },
        )
        .await
        .unwrap());
    moved("a credential edit", s.conn_generation().await.unwrap());
    let ca = s
        .insert_trusted_ca(
            "gen-ca",
            "ssh-ed25519 AAAA",
            "ssh-ed25519",
            "SHA256:ca",
            &["*".into()],
        )
        .await
        .unwrap();
    moved("a new trusted CA", s.conn_generation().await.unwrap());
    assert!(s.delete_trusted_ca(&ca.id).await.unwrap());
    moved("a removed trusted CA", s.conn_generation().await.unwrap());
    assert!(s.delete_server(&a.id).await.unwrap());
    moved("a deleted server", s.conn_generation().await.unwrap());
}
on_both!(connection_generation_moves_with_connection_settings);

/// A single job for a server named by id or by name: the server is resolved in the job's own
/// transaction; an unknown one stores neither the job nor its audit row.
async fn submit_to_a_server_by_id_or_name(s: &Store) {
    let srv = s.insert_server(&server("by-name")).await.unwrap();
    let audit = || remora_store::NewAudit {
        token_id: None,
        action: "job.submit".into(),
        object_type: "job".into(),
        object_id: None,
        detail: None,
    };
    for named in [srv.id.as_str(), "by-name"] {
        let j = job(named, 6000, "echo named");
        let got = s.submit_job_to(named, &j, Some(audit())).await.unwrap();
        assert_eq!(got.as_deref(), Some(srv.id.as_str()), "{named}");
        let stored = s.get_job(&j.id).await.unwrap().unwrap();
        assert_eq!(stored.server_id, srv.id, "{named}");
    }
    let before = s.list_audit(100).await.unwrap().len();
    let j = job("no-such-server", 6001, "echo lost");
    assert_eq!(
        s.submit_job_to("no-such-server", &j, Some(audit()))
            .await
            .unwrap(),
        None
    );
    assert!(s.get_job(&j.id).await.unwrap().is_none());
    assert_eq!(s.list_audit(100).await.unwrap().len(), before);
}
on_both!(submit_to_a_server_by_id_or_name);
