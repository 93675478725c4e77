//! Every store query, on SQLite and on PostgreSQL.

use remora_domain::{Job, JobKind, JobStatus, Stream};
use remora_store::{
    CancelOutcome, Claim, Finish, JobFilter, NewServer, OutputChunk, Store, StoreError, WorkerRow,
};

async fn sqlite() -> (Store, tempfile::TempDir) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::connect(&remora_store::default_url(d.path()))
        .await
        .unwrap();
    (s, d)
}

fn server(name: &str) -> NewServer {
    NewServer {
        name: name.into(),
        hostname: "127.0.0.1".into(),
        port: 22,
        user: "u".into(),
        password_enc: Some(vec![1, 2, 3]),
        is_active: true,
        tags: vec!["web".into()],
        max_concurrency: 1,
        ..Default::default()
    }
}

fn job(server_id: &str, created_at: i64, cmd: &str) -> Job {
    Job {
        id: remora_domain::new_id(),
        kind: JobKind::Command,
        command: Some(cmd.into()),
        args: vec!["a b".into()],
        script: None,
        shell: None,
        server_id: server_id.into(),
        batch_id: None,
        status: JobStatus::Queued,
        priority: 5,
        timeout: 0,
        exit_code: None,
        exit_signal: None,
        error: None,
        error_code: None,
        attempt: 0,
        max_retries: 1,
        worker_id: None,
        cancel_requested: false,
        created_at,
        started_at: None,
        finished_at: None,
        stdout_bytes: 0,
        stderr_bytes: 0,
        truncated: false,
    }
}

/// A store on a fresh PostgreSQL database; `None` (said on stderr) without
/// `REMORA_TEST_PG_URL`, which under CI=true fails instead.
async fn postgres() -> Option<(Store, remora_testkit::pg::PgDb)> {
    let Some(db) = remora_testkit::pg::database().unwrap() else {
        eprintln!("skipped: REMORA_TEST_PG_URL is not set");
        return None;
    };
    let s = Store::connect(&db.url).await.unwrap();
    Some((s, db))
}

/// The whole query surface, asserted step by step.
async fn exercise(s: &Store) {
    // servers
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
    let sec = s.server_secrets(&a.id).await.unwrap().unwrap();
    assert_eq!(sec.password_enc, Some(vec![1, 2, 3]));
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

    // jobs
    let j1 = job(&a.id, 1000, "echo one");
    let j2 = job(&a.id, 2000, "echo TWO");
    let j3 = job(&b.id, 3000, "uptime 100%");
    for j in [&j1, &j2, &j3] {
        s.insert_job(j).await.unwrap();
    }
    assert_eq!(s.get_job(&j1.id).await.unwrap().unwrap(), j1);
    let (page, total) = s
        .list_jobs(&JobFilter {
            page: 1,
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert_eq!(
        page.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
        vec![j3.id.clone(), j2.id.clone()],
        "newest first"
    );
    let (p2, _) = s
        .list_jobs(&JobFilter {
            page: 2,
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(p2[0].id, j1.id);
    let (by_server, n) = s
        .list_jobs(&JobFilter {
            page: 1,
            limit: 10,
            server_id: Some(b.id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((n, by_server[0].id.clone()), (1, j3.id.clone()));
    let (found, n) = s
        .list_jobs(&JobFilter {
            page: 1,
            limit: 10,
            search: Some("two".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (n, found[0].id.clone()),
        (1, j2.id.clone()),
        "search is case-insensitive"
    );
    let (found, n) = s
        .list_jobs(&JobFilter {
            page: 1,
            limit: 10,
            search: Some("100%".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (n, found[0].id.clone()),
        (1, j3.id.clone()),
        "LIKE wildcards are escaped"
    );
    let (_, n) = s
        .list_jobs(&JobFilter {
            page: 1,
            limit: 10,
            search: Some("0%".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(n, 1);
    let (asc, _) = s
        .list_jobs(&JobFilter {
            page: 1,
            limit: 10,
            ascending: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(asc[0].id, j1.id);
    assert_eq!(s.queued_jobs(10).await.unwrap().len(), 3);
    let p = s
        .list_jobs_page(&JobFilter {
            page: 1,
            limit: 1,
            count_cap: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (p.items.len(), p.total, p.total_exact, p.has_next),
        (1, 2, false, true),
        "capped count"
    );
    let p = s
        .list_jobs_page(&JobFilter {
            page: 3,
            limit: 1,
            count_cap: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (p.items.len(), p.total, p.total_exact, p.has_next),
        (1, 3, true, false)
    );
    let (_, n) = s
        .list_jobs(&JobFilter {
            page: 1,
            limit: 10,
            created_after: Some(2000),
            created_before: Some(3000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(n, 1, "created_at window");

    // workers
    let now = remora_domain::time::now_ms();
    let w = WorkerRow {
        id: "w1".into(),
        hostname: "h".into(),
        version: "v".into(),
        concurrency: 4,
        running: 0,
        started_at: now,
        last_heartbeat_at: now,
        status: "up".into(),
    };
    s.register_worker(&w).await.unwrap();
    s.register_worker(&w).await.unwrap();
    assert!(s.heartbeat_worker("w1", 1, "up").await.unwrap());
    assert_eq!(s.list_workers().await.unwrap().len(), 1);

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

    // output chunks, appended, bytes-exact
    let chunks = vec![
        OutputChunk {
            seq: 0,
            stream: Stream::Stdout,
            data: b"a\n\n".to_vec(),
        },
        OutputChunk {
            seq: 1,
            stream: Stream::Stderr,
            data: vec![0xe2, 0x82],
        },
    ];
    s.append_output(&j1.id, &chunks, 3, 2, false).await.unwrap();
    s.append_output(
        &j1.id,
        &[OutputChunk {
            seq: 2,
            stream: Stream::Stderr,
            data: vec![0xac],
        }],
        3,
        3,
        true,
    )
    .await
    .unwrap();
    assert!(
        s.append_output(
            &j1.id,
            &[OutputChunk {
                seq: 2,
                stream: Stream::Stdout,
                data: vec![1]
            }],
            3,
            3,
            true
        )
        .await
        .is_err(),
        "a seq is written once"
    );
    let (out, err) = s.job_output(&j1.id).await.unwrap();
    assert_eq!(out, b"a\n\n");
    assert_eq!(String::from_utf8(err).unwrap(), "€");
    assert_eq!(s.output_chunks(&j1.id, 0).await.unwrap().len(), 2);
    let j = s.get_job(&j1.id).await.unwrap().unwrap();
    assert_eq!((j.stdout_bytes, j.stderr_bytes, j.truncated), (3, 3, true));

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

    // reaper: a stale worker's running job is orphaned and force-finished
    assert!(s.mark_stale_workers(now - 60_000).await.unwrap().is_empty());
    assert_eq!(
        s.mark_stale_workers(remora_domain::time::now_ms() + 1)
            .await
            .unwrap(),
        vec!["w1".to_string()]
    );
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
    let counts = s.count_jobs_by_status().await.unwrap();
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<i64>(), 3);

    // tokens
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

    // rekey: every sealed value moves to the new key, in one transaction
    let old = remora_store::Vault::new([3; 32]);
    let new = remora_store::Vault::new([4; 32]);
    let mut sealed = server("sealed");
    sealed.password_enc = Some(old.seal(b"pw"));
    sealed.private_key_enc = Some(old.seal(b"key"));
    let sv = s.insert_server(&sealed).await.unwrap();
    s.insert_pem(
        "ssh-ed25519",
        "SHA256:x",
        &old.seal(b"pem"),
        Some(old.seal(b"pass")),
        3,
    )
    .await
    .unwrap();
    // Values sealed under other keys (the fixtures above) would fail: rekey refuses, changing nothing.
    assert!(
        s.rekey(&old, &new).await.is_err(),
        "unreadable values abort the rekey"
    );
    assert_eq!(
        s.open_secrets(&sv.id, &old)
            .await
            .unwrap()
            .unwrap()
            .password
            .as_deref(),
        Some("pw")
    );
    for id in [a.id.clone(), b.id.clone()] {
        s.delete_server(&id).await.unwrap();
    }
    assert_eq!(s.rekey(&old, &new).await.unwrap(), 4);
    let plain = s.open_secrets(&sv.id, &new).await.unwrap().unwrap();
    assert_eq!(
        (plain.password.as_deref(), plain.private_key.as_deref()),
        (Some("pw"), Some("key"))
    );
    assert!(s.open_secrets(&sv.id, &old).await.is_err());
    let b = s.insert_server(&server("beta-again")).await.unwrap();

    assert!(s.delete_server(&b.id).await.unwrap());
    assert!(!s.delete_server(&b.id).await.unwrap());
    s.ping().await.unwrap();
}

/// Free-text search gives the same answer on every path: the trigram index
/// read by id (rare strings), LIKE along the list's index (common strings, and
/// strings shorter than a trigram), alone and with other filters.
async fn search(s: &Store) {
    let a = s.insert_server(&server("search-a")).await.unwrap();
    let b = s.insert_server(&server("search-b")).await.unwrap();
    let mut jobs = Vec::new();
    for i in 0..30 {
        let srv = if i % 2 == 0 { &a.id } else { &b.id };
        let cmd = if i % 3 == 0 {
            format!("deploy web-{i}")
        } else {
            format!("echo {i}")
        };
        let mut j = job(srv, 1000 + i, &cmd);
        j.priority = 1 + (i * 7) % 10;
        jobs.push(j);
    }
    let mut script = job(&a.id, 5000, "ignored");
    script.kind = JobKind::Script;
    script.command = None;
    script.script = Some("#!/bin/sh\nset -e\nROLLBACK \"now\" 100%\n".into());
    jobs.push(script.clone());
    for j in &jobs {
        s.insert_job(j).await.unwrap();
    }
    let expect = |q: &str, server: Option<&str>| -> Vec<String> {
        let q = q.to_lowercase();
        let mut m: Vec<&Job> = jobs
            .iter()
            .filter(|j| server.is_none_or(|sv| j.server_id == sv))
            .filter(|j| {
                format!(
                    "{} {} {}",
                    j.id,
                    j.command.as_deref().unwrap_or(""),
                    j.script.as_deref().unwrap_or("")
                )
                .to_lowercase()
                .contains(&q)
            })
            .collect();
        m.sort_by(|x, y| (y.created_at, &y.id).cmp(&(x.created_at, &x.id)));
        m.iter().map(|j| j.id.clone()).collect()
    };
    let tail = &script.id[script.id.len() - 10..];
    let cases: [(&str, Option<&str>); 9] = [
        ("deploy", None),
        ("DEPLOY WEB-1", None),
        ("deploy", Some(&b.id)),
        ("rollback", None),
        ("\"now\" 1", None),
        ("100%", None),
        (tail, None),
        ("pl", Some(&a.id)),
        ("zzzz", None),
    ];
    for dense in [1, 1_000_000] {
        let s = s.clone().with_dense_matches(dense);
        // A limit of 100 holds every match; with 2 the total comes from the count.
        for (q, server, limit) in cases
            .iter()
            .flat_map(|&(q, sv)| [(q, sv, 100usize), (q, sv, 2)])
        {
            let want = expect(q, server);
            let p = s
                .list_jobs_page(&JobFilter {
                    page: 1,
                    limit: limit as i64,
                    search: Some(q.into()),
                    server_id: server.map(str::to_string),
                    count_cap: 1000,
                    ..Default::default()
                })
                .await
                .unwrap();
            let got: Vec<String> = p.items.iter().map(|j| j.id.clone()).collect();
            assert_eq!(
                got,
                want[..want.len().min(limit)],
                "search {q:?} server {server:?} dense {dense} limit {limit}"
            );
            assert_eq!(
                (p.total, p.total_exact),
                (want.len() as i64, true),
                "{q:?} limit {limit}"
            );
        }
        // A filtered list sorted by another column: through the filter's
        // index (dense 1,000,000) or along the sort column's (dense 1).
        for (sort, asc, server, after) in [
            ("priority", false, Some(&a.id), None),
            ("priority", true, Some(&b.id), Some(1010)),
            ("priority", false, None, Some(1005)),
        ] {
            let mut want: Vec<&Job> = jobs
                .iter()
                .filter(|j| server.is_none_or(|sv| &j.server_id == sv))
                .filter(|j| after.is_none_or(|t| j.created_at >= t))
                .collect();
            want.sort_by(|x, y| (x.priority, &x.id).cmp(&(y.priority, &y.id)));
            if !asc {
                want.reverse();
            }
            let want: Vec<String> = want.iter().map(|j| j.id.clone()).collect();
            for limit in [100usize, 3] {
                let p = s
                    .list_jobs_page(&JobFilter {
                        page: 1,
                        limit: limit as i64,
                        server_id: server.cloned(),
                        created_after: after,
                        sort_by: Some(sort.into()),
                        ascending: asc,
                        count_cap: 1000,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                let got: Vec<String> = p.items.iter().map(|j| j.id.clone()).collect();
                assert_eq!(
                    got,
                    want[..want.len().min(limit)],
                    "sort {sort} asc {asc} server {server:?} after {after:?} dense {dense}"
                );
                assert_eq!((p.total, p.total_exact), (want.len() as i64, true));
            }
        }
        assert_eq!(expect("deploy", None).len(), 10);
        assert_eq!(expect("rollback", None), vec![script.id.clone()]);
        // A capped count and a second page.
        let p = s
            .list_jobs_page(&JobFilter {
                page: 2,
                limit: 4,
                search: Some("deploy".into()),
                count_cap: 3,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            p.items.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
            expect("deploy", None)[4..8].to_vec()
        );
        assert!(p.has_next && !p.total_exact && p.total >= 8, "{}", p.total);
    }
}

#[tokio::test]
async fn search_on_sqlite() {
    let (s, _d) = sqlite().await;
    search(&s).await;
}

#[tokio::test]
async fn search_on_postgres() {
    let Some((s, db)) = postgres().await else {
        return;
    };
    assert_eq!(
        db.psql("SELECT count(*) FROM pg_indexes WHERE indexname = 'jobs_search_trgm'")
            .unwrap()
            .trim(),
        "1",
        "pg_trgm index created by migration 0004"
    );
    search(&s).await;
    s.close().await;
}

#[tokio::test]
async fn every_query_on_sqlite() {
    let (s, _d) = sqlite().await;
    exercise(&s).await;
}

#[tokio::test]
async fn every_query_on_postgres() {
    let Some((s, _db)) = postgres().await else {
        return;
    };
    exercise(&s).await;
    s.close().await;
}

#[tokio::test]
async fn migrations_are_idempotent_on_reopen() {
    let d = tempfile::tempdir().unwrap();
    let url = remora_store::default_url(d.path());
    let s = Store::connect(&url).await.unwrap();
    s.insert_server(&server("x")).await.unwrap();
    s.close().await;
    let s = Store::connect(&url).await.unwrap();
    assert_eq!(s.list_servers().await.unwrap().len(), 1);
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_starting_together_migrate_once() {
    let d = tempfile::tempdir().unwrap();
    let url = remora_store::default_url(d.path());
    let mut handles = Vec::new();
    for _ in 0..6 {
        let url = url.clone();
        handles.push(tokio::spawn(async move {
            Store::connect(&url).await.map(|_| ())
        }));
    }
    for h in handles {
        h.await
            .unwrap()
            .expect("a concurrent start failed to open the database");
    }
}

/// A database user that may not create extensions (no CREATE on the database,
/// as on some managed servers): the migrations still apply, the store says
/// why search has no index, and search answers the same without it.
#[tokio::test]
async fn postgres_without_the_trigram_extension_still_starts_and_searches() {
    let Some(db) = remora_testkit::pg::database().unwrap() else {
        eprintln!("skipped: REMORA_TEST_PG_URL is not set");
        return;
    };
    let role = format!("{}_user", db.name());
    db.psql(&format!(
        "CREATE ROLE \"{role}\" LOGIN PASSWORD 'pw'; \
         GRANT CONNECT ON DATABASE \"{db}\" TO \"{role}\"; \
         GRANT USAGE, CREATE ON SCHEMA public TO \"{role}\";",
        db = db.name()
    ))
    .unwrap();
    // postgres://[user@]host… → postgres://ROLE:pw@host…
    let (scheme, rest) = db.url.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    let url = format!("{scheme}://{role}:pw@{host}");
    let s = Store::connect(&url).await.unwrap();
    assert_eq!(
        db.psql("SELECT count(*) FROM pg_indexes WHERE indexname = 'jobs_search_trgm'")
            .unwrap()
            .trim(),
        "0",
        "the extension needs CREATE on the database, which this user lacks"
    );
    search(&s).await;
    s.close().await;
    db.psql(&format!("DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\";"))
        .unwrap();
}

/// The queries that run on every job (claim, worker heartbeat, queued scan)
/// read an index made for them, not every job of a server: SQLite's plan
/// for each names that index (no statistics, as in production).
#[tokio::test]
async fn per_job_queries_use_their_indexes_on_sqlite() {
    use sqlx::{Connection, Row};
    let (s, d) = sqlite().await;
    s.close().await;
    let url = remora_store::default_url(d.path());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for (sql, index) in [
        (
            "SELECT COUNT(*) FROM jobs WHERE server_id = 'x' AND status = 'running'",
            "jobs_server_status",
        ),
        (
            "SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at LIMIT 10",
            "jobs_status_created",
        ),
        (
            "SELECT id FROM jobs WHERE worker_id = 'w' AND status = 'running'",
            "jobs_worker_status",
        ),
        (
            "SELECT id FROM jobs ORDER BY started_at DESC, id DESC LIMIT 51",
            "jobs_started",
        ),
    ] {
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
            .fetch_all(&mut c)
            .await
            .unwrap();
        let plan: Vec<String> = rows.iter().map(|r| r.get::<String, _>(3)).collect();
        assert!(
            plan.iter().any(|p| p.contains(index)),
            "{sql}: plan {plan:?} does not use {index}"
        );
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

#[tokio::test]
async fn batch_insert_on_sqlite() {
    let (s, _d) = sqlite().await;
    batch_insert(&s).await;
}

#[tokio::test]
async fn batch_insert_on_postgres() {
    let Some((s, _db)) = postgres().await else {
        return;
    };
    batch_insert(&s).await;
    s.close().await;
}
