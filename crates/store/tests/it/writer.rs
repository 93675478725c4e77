//! Group commit: many concurrent claims, appends, finishes and submissions share transactions,
//! each caller gets exactly its own result, and an `Ok` means committed (also across a kill -9).

use crate::{job, unlimited_server};
use futures::future::join_all;
use remora_domain::{JobStatus, Stream};
use remora_store::{BatchLimits, Claim, Finish, OutputChunk, PendingOutput, Store, StoreError};

fn chunk(seq: i64, stream: Stream, data: &[u8]) -> OutputChunk {
    OutputChunk {
        seq,
        stream,
        data: data.to_vec(),
    }
}

fn done() -> Finish {
    Finish {
        status: Some(JobStatus::Completed),
        exit_code: Some(0),
        ..Default::default()
    }
}

/// 60 jobs, each claimed by two workers at once, appended to (with identical retries, a
/// conflicting call and a duplicate submission in the same rounds) and finished three times at
/// once: one claim wins, only the conflicting caller gets the conflict and nothing of its call
/// is stored, exactly one finish applies.
async fn each_caller_gets_its_own_result(s: &Store) {
    let srv = unlimited_server(s, "many").await;
    let jobs: Vec<_> = (0..60)
        .map(|i| job(&srv.id, 1000 + i, &format!("echo {i}")))
        .collect();
    s.insert_jobs(&jobs).await.unwrap();
    let before = s.writer_stats();

    // Claims: two workers per job, all at once.
    let claims = join_all(jobs.iter().flat_map(|j| {
        ["w1", "w2"].map(|w| {
            let s = s.clone();
            let id = j.id.clone();
            async move { (w, s.claim_job(&id, w).await.unwrap()) }
        })
    }))
    .await;
    let mut winners = Vec::new();
    for pair in claims.chunks(2) {
        let won: Vec<_> = pair
            .iter()
            .filter(|(_, c)| matches!(c, Claim::Claimed(_)))
            .collect();
        assert_eq!(won.len(), 1, "exactly one claim wins: {pair:?}");
        let lost = pair.iter().find(|(w, _)| *w != won[0].0).unwrap();
        assert_eq!(lost.1, Claim::NotQueued);
        winners.push(won[0].0);
    }

    // Output, first round: seq 0 (stdout) and 1 (stderr) of every job.
    let first = |i: usize| {
        vec![
            chunk(0, Stream::Stdout, format!("out {i}\n").as_bytes()),
            chunk(1, Stream::Stderr, format!("err {i}").as_bytes()),
        ]
    };
    let r = join_all(jobs.iter().enumerate().map(|(i, j)| {
        let s = s.clone();
        let c = first(i);
        async move {
            let n = c[0].data.len() as i64;
            s.append_output(&j.id, &c, n, c[1].data.len() as i64, false)
                .await
        }
    }))
    .await;
    assert!(r.iter().all(|r| r.is_ok()), "{r:?}");

    // Second round, all at once: an identical retry of the first call (kept, Ok), for every
    // third job a call with another seq 1 and a seq 2 (a conflict: nothing of it stored), and
    // one submission of an already stored job id (the database refuses it).
    enum Kind {
        Retry,
        Conflicting,
        Resubmit,
    }
    let mut calls = Vec::new();
    for i in 0..jobs.len() {
        calls.push((i, Kind::Retry));
        if i % 3 == 0 {
            calls.push((i, Kind::Conflicting));
        }
        if i == 7 {
            calls.push((i, Kind::Resubmit));
        }
    }
    let results = join_all(calls.iter().map(|(i, kind)| {
        let s = s.clone();
        let j = jobs[*i].clone();
        let c = first(*i);
        let (o, e) = (c[0].data.len() as i64, c[1].data.len() as i64);
        async move {
            match kind {
                Kind::Retry => s.append_output(&j.id, &c, o, e, false).await,
                Kind::Conflicting => {
                    s.append_output(
                        &j.id,
                        &[
                            chunk(1, Stream::Stderr, b"other"),
                            chunk(2, Stream::Stdout, b"bad"),
                        ],
                        o + 3,
                        5,
                        true,
                    )
                    .await
                }
                Kind::Resubmit => s.insert_job(&j).await,
            }
        }
    }))
    .await;
    for ((i, kind), r) in calls.iter().zip(&results) {
        match kind {
            Kind::Retry => assert!(r.is_ok(), "job {i}: {r:?}"),
            Kind::Conflicting => assert!(
                matches!(r, Err(StoreError::Conflict { constraint }) if constraint == "job_output_pkey"),
                "job {i}: {r:?}"
            ),
            Kind::Resubmit => assert!(
                matches!(r, Err(StoreError::Conflict { constraint }) if constraint == "jobs_pkey"),
                "job {i}: {r:?}"
            ),
        }
    }

    // Third round: the real seq 2 (it would conflict had the conflicting call stored its seq 2).
    let r = join_all(jobs.iter().enumerate().map(|(i, j)| {
        let s = s.clone();
        let (o, e) = (
            format!("out {i}\n").len() as i64,
            format!("err {i}").len() as i64,
        );
        async move {
            s.append_output(&j.id, &[chunk(2, Stream::Stdout, b"tail")], o + 4, e, false)
                .await
        }
    }))
    .await;
    assert!(r.iter().all(|r| r.is_ok()), "{r:?}");

    // Finishes: the winner twice and the loser once, all at once.
    let finishes = join_all(jobs.iter().zip(&winners).flat_map(|(j, w)| {
        let loser = if *w == "w1" { "w2" } else { "w1" };
        [*w, *w, loser].map(|worker| {
            let s = s.clone();
            let id = j.id.clone();
            async move { s.finish_job(&id, worker, &done()).await.unwrap() }
        })
    }))
    .await;
    for (i, three) in finishes.chunks(3).enumerate() {
        let applied: Vec<_> = three.iter().flatten().collect();
        assert_eq!(applied, [&JobStatus::Completed], "job {i}: {three:?}");
        assert_eq!(
            three[2], None,
            "job {i}: the loser's finish applies to nothing"
        );
    }

    for (i, j) in jobs.iter().enumerate() {
        let (out, err) = s.job_output(&j.id).await.unwrap();
        assert_eq!(out, format!("out {i}\ntail").as_bytes(), "job {i}");
        assert_eq!(err, format!("err {i}").as_bytes(), "job {i}");
        let got = s.get_job(&j.id).await.unwrap().unwrap();
        assert_eq!(got.status, JobStatus::Completed);
        assert_eq!(got.worker_id.as_deref(), Some(winners[i]));
        assert_eq!(
            (got.stdout_bytes, got.stderr_bytes, got.truncated),
            (out.len() as i64, err.len() as i64, false),
            "job {i}: the conflicting call's counters were not stored"
        );
    }
    // The writes did share transactions.
    let after = s.writer_stats();
    let (rounds, ops) = (after.rounds - before.rounds, after.ops - before.ops);
    assert!(ops >= 60 * 4, "{after:?}");
    assert!(rounds * 4 < ops, "rounds {rounds} for {ops} writes");
    assert!(
        after.fallbacks > before.fallbacks,
        "the duplicate submission forced a fallback"
    );
}
on_both!(each_caller_gets_its_own_result);

/// The final status with the last output: the chunks and the counters are stored in its
/// transaction; an identical retry is kept; a refused finish (the job not running on that
/// worker) still stores its output; a conflicting chunk fails the whole call and stores none of it.
async fn finish_carries_the_last_output(s: &Store) {
    let srv = unlimited_server(s, "carry").await;
    let jobs: Vec<_> = (0..3)
        .map(|i| job(&srv.id, 2000 + i, &format!("echo {i}")))
        .collect();
    s.insert_jobs(&jobs).await.unwrap();
    for j in &jobs {
        assert!(matches!(
            s.claim_job(&j.id, "w1").await.unwrap(),
            Claim::Claimed(_)
        ));
    }
    let (a, b, c) = (&jobs[0].id, &jobs[1].id, &jobs[2].id);
    // Job a: one flush during the run, the rest with the final status (sent twice, as after
    // an unconfirmed commit).
    s.append_output(a, &[chunk(0, Stream::Stdout, b"one\n")], 4, 0, false)
        .await
        .unwrap();
    let last = PendingOutput {
        chunks: vec![
            chunk(1, Stream::Stderr, b"warn"),
            chunk(2, Stream::Stdout, b"two\n"),
        ],
        stdout_bytes: 8,
        stderr_bytes: 4,
        truncated: true,
    };
    assert_eq!(
        s.finish_job_with_output(a, "w1", &done(), Some(last.clone()))
            .await
            .unwrap(),
        Some(JobStatus::Completed)
    );
    assert_eq!(
        s.finish_job_with_output(a, "w1", &done(), Some(last.clone()))
            .await
            .unwrap(),
        None,
        "the retry's status applies to nothing; its identical chunks are kept"
    );
    let (out, err) = s.job_output(a).await.unwrap();
    assert_eq!(
        (out.as_slice(), err.as_slice()),
        (&b"one\ntwo\n"[..], &b"warn"[..])
    );
    let got = s.get_job(a).await.unwrap().unwrap();
    assert_eq!(
        (
            got.status,
            got.stdout_bytes,
            got.stderr_bytes,
            got.truncated
        ),
        (JobStatus::Completed, 8, 4, true)
    );

    // Job b: finished by a worker it is not running on; its output is stored all the same.
    let other = PendingOutput {
        chunks: vec![chunk(0, Stream::Stdout, b"late")],
        stdout_bytes: 4,
        ..Default::default()
    };
    assert_eq!(
        s.finish_job_with_output(b, "w2", &done(), Some(other))
            .await
            .unwrap(),
        None
    );
    let got = s.get_job(b).await.unwrap().unwrap();
    assert_eq!((got.status, got.stdout_bytes), (JobStatus::Running, 4));
    assert_eq!(s.job_output(b).await.unwrap().0, b"late");

    // Job c: a chunk under a stored seq with other bytes: an error, and nothing of the call.
    s.append_output(c, &[chunk(0, Stream::Stdout, b"x")], 1, 0, false)
        .await
        .unwrap();
    let bad = PendingOutput {
        chunks: vec![
            chunk(0, Stream::Stdout, b"y"),
            chunk(1, Stream::Stdout, b"z"),
        ],
        stdout_bytes: 2,
        ..Default::default()
    };
    let e = s
        .finish_job_with_output(c, "w1", &done(), Some(bad))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    let got = s.get_job(c).await.unwrap().unwrap();
    assert_eq!((got.status, got.stdout_bytes), (JobStatus::Running, 1));
    assert_eq!(s.job_output(c).await.unwrap().0, b"x");
}
on_both!(finish_carries_the_last_output);

/// `max_ops` and `max_bytes` bound a round.
async fn limits_bound_a_round(url: &str) {
    let s = Store::connect_with(
        url,
        BatchLimits {
            max_ops: 3,
            max_bytes: 1000,
            writers: 1,
        },
    )
    .await
    .unwrap();
    let srv = unlimited_server(&s, "limits").await;
    let jobs: Vec<_> = (0..30).map(|i| job(&srv.id, i, "true")).collect();
    s.insert_jobs(&jobs).await.unwrap();
    let before = s.writer_stats();
    let r = join_all(jobs.iter().map(|j| {
        let s = s.clone();
        let id = j.id.clone();
        async move {
            s.append_output(&id, &[chunk(0, Stream::Stdout, b"x")], 1, 0, false)
                .await
        }
    }))
    .await;
    assert!(r.iter().all(|r| r.is_ok()));
    let mid = s.writer_stats();
    assert_eq!(mid.ops - before.ops, 30);
    assert!(
        mid.rounds - before.rounds >= 10,
        "at most 3 per round: {mid:?}"
    );
    // 600 bytes each: two would pass 1000, so every round has one.
    let r = join_all(jobs.iter().map(|j| {
        let s = s.clone();
        let id = j.id.clone();
        async move {
            s.append_output(
                &id,
                &[chunk(1, Stream::Stdout, &[b'y'; 600])],
                601,
                0,
                false,
            )
            .await
        }
    }))
    .await;
    assert!(r.iter().all(|r| r.is_ok()));
    let end = s.writer_stats();
    assert_eq!(end.rounds - mid.rounds, 30, "{end:?}");
    for j in &jobs {
        assert_eq!(s.job_output(&j.id).await.unwrap().0.len(), 601);
    }
    s.close().await;
}

#[tokio::test]
async fn limits_bound_a_round_on_sqlite() {
    let d = tempfile::tempdir().unwrap();
    limits_bound_a_round(&remora_store::default_url(d.path())).await;
}

#[tokio::test]
async fn limits_bound_a_round_on_postgres() {
    let Some(db) = remora_testkit::pg::database().unwrap() else {
        eprintln!("skipped: REMORA_TEST_PG_URL is not set");
        return;
    };
    limits_bound_a_round(&db.url).await;
}

/// Closing the store while writes are queued: every write whose caller got `Ok` is stored,
/// none whose caller got an error is.
async fn closed_mid_batch(url: &str) {
    let s = Store::connect(url).await.unwrap();
    let srv = unlimited_server(&s, "closing").await;
    let jobs: Vec<_> = (0..200).map(|i| job(&srv.id, i, "true")).collect();
    s.insert_jobs(&jobs).await.unwrap();
    let closer = {
        let s = s.clone();
        async move {
            // Close once some writes went through.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while s.writer_stats().rounds < 3 {
                assert!(std::time::Instant::now() < deadline, "no round ran");
                tokio::task::yield_now().await;
            }
            s.close().await;
        }
    };
    let writes = join_all(jobs.iter().map(|j| {
        let s = s.clone();
        let id = j.id.clone();
        async move {
            let mut acked = Vec::new();
            for seq in 0..20 {
                let data = format!("{id}:{seq};");
                match s
                    .append_output(
                        &id,
                        &[chunk(seq, Stream::Stdout, data.as_bytes())],
                        0,
                        0,
                        false,
                    )
                    .await
                {
                    Ok(()) => acked.push(seq),
                    Err(_) => return (id, acked, Some(seq)),
                }
            }
            (id, acked, None)
        }
    }));
    let (results, ()) = tokio::join!(writes, closer);
    let s = Store::connect(url).await.unwrap();
    let (mut oks, mut errs) = (0, 0);
    for (id, acked, failed) in results {
        let stored: Vec<i64> = s
            .output_chunks(&id, -1)
            .await
            .unwrap()
            .iter()
            .map(|c| c.seq)
            .collect();
        assert_eq!(
            stored, acked,
            "job {id}: stored exactly the acknowledged seqs"
        );
        oks += acked.len();
        errs += failed.is_some() as usize;
    }
    assert!(
        oks > 0 && errs > 0,
        "the close fell mid-batch: {oks} ok, {errs} failed"
    );
    s.close().await;
}

#[tokio::test]
async fn closed_mid_batch_on_sqlite() {
    let d = tempfile::tempdir().unwrap();
    closed_mid_batch(&remora_store::default_url(d.path())).await;
}

#[tokio::test]
async fn closed_mid_batch_on_postgres() {
    let Some(db) = remora_testkit::pg::database().unwrap() else {
        eprintln!("skipped: REMORA_TEST_PG_URL is not set");
        return;
    };
    closed_mid_batch(&db.url).await;
}

const CRASH_URL: &str = "REMORA_TEST_WRITER_CRASH_URL";

/// The child of `killed_mid_batch`: appends to every queued job of the database at once, one
/// chunk after another, and prints `ACK job seq` after each `Ok`. Does nothing unless started
/// by that test.
#[tokio::test]
#[ignore = "run by killed_mid_batch_* as a child process"]
async fn crash_child() {
    use std::io::Write;
    let Ok(url) = std::env::var(CRASH_URL) else {
        return;
    };
    let s = Store::connect(&url).await.unwrap();
    let ids: Vec<String> = s
        .queued_jobs(10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    join_all(ids.into_iter().map(|id| {
        let s = s.clone();
        async move {
            let mut total = 0;
            for seq in 0.. {
                let data = format!("{id}:{seq};");
                total += data.len() as i64;
                // A failed write is tried again under the same seq, so no seq is skipped.
                while s
                    .append_output(
                        &id,
                        &[chunk(seq, Stream::Stdout, data.as_bytes())],
                        total,
                        0,
                        false,
                    )
                    .await
                    .is_err()
                {}
                let mut out = std::io::stdout().lock();
                writeln!(out, "ACK {id} {seq}").unwrap();
                out.flush().unwrap();
            }
        }
    }))
    .await;
}

/// kill -9 of a process in the middle of its group commits: every write it had an `Ok` for
/// is stored, with its counters (same transaction), and each job's seqs have no hole.
async fn killed_mid_batch(url: &str) {
    use std::io::BufRead;
    let s = Store::connect(url).await.unwrap();
    let srv = unlimited_server(&s, "crash").await;
    let jobs: Vec<_> = (0..200).map(|i| job(&srv.id, i, "true")).collect();
    s.insert_jobs(&jobs).await.unwrap();
    s.close().await;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "writer::crash_child", "--ignored", "--nocapture"])
        .env(CRASH_URL, url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acks: std::collections::HashMap<String, i64> = Default::default();
    let mut count = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while count < 1500 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("{count} acks before the deadline: {e}"));
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (id, seq) = rest.split_once(' ').unwrap();
            let seq: i64 = seq.parse().unwrap();
            let e = acks.entry(id.to_string()).or_insert(-1);
            *e = (*e).max(seq);
            count += 1;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // What the child printed before it died counts too.
    reader.join().unwrap();
    for line in rx.try_iter() {
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (id, seq) = rest.split_once(' ').unwrap();
            let e = acks.entry(id.to_string()).or_insert(-1);
            *e = (*e).max(seq.parse().unwrap());
        }
    }
    let s = Store::connect(url).await.unwrap();
    for j in &jobs {
        let stored = s.output_chunks(&j.id, -1).await.unwrap();
        let acked = acks.get(&j.id).copied().unwrap_or(-1);
        assert!(
            stored.len() as i64 > acked,
            "job {}: acked up to seq {acked}, stored {}",
            j.id,
            stored.len()
        );
        let mut bytes = 0;
        for (i, c) in stored.iter().enumerate() {
            assert_eq!(c.seq, i as i64, "no hole");
            assert_eq!(c.data, format!("{}:{i};", j.id).as_bytes());
            bytes += c.data.len() as i64;
        }
        let row = s.get_job(&j.id).await.unwrap().unwrap();
        assert_eq!(
            row.stdout_bytes, bytes,
            "counters committed with their chunks"
        );
    }
    s.close().await;
}

#[tokio::test]
async fn killed_mid_batch_on_sqlite() {
    let d = tempfile::tempdir().unwrap();
    killed_mid_batch(&remora_store::default_url(d.path())).await;
}

#[tokio::test]
async fn killed_mid_batch_on_postgres() {
    let Some(db) = remora_testkit::pg::database().unwrap() else {
        eprintln!("skipped: REMORA_TEST_PG_URL is not set");
        return;
    };
    killed_mid_batch(&db.url).await;
}

/// Measurement, not a check (run with `--ignored`, `REMORA_TEST_PG_URL` for PostgreSQL):
/// 64 tasks each claiming, appending 5 chunks to and finishing 20 jobs, under several
/// group-commit bounds. `max_ops 1` is one transaction per write (the store before group
/// commit); prints writes per second.
#[tokio::test]
#[ignore = "measurement"]
async fn group_commit_throughput() {
    let d = tempfile::tempdir().unwrap();
    let mut urls = vec![("sqlite", remora_store::default_url(d.path()))];
    let pg = remora_testkit::pg::database().unwrap();
    if let Some(db) = &pg {
        urls.push(("postgres", db.url.clone()));
    }
    for (name, url) in urls {
        for (max_ops, writers) in [(1, 16), (256, 1), (256, 4), (256, 16)] {
            let s = Store::connect_with(
                &url,
                BatchLimits {
                    max_ops,
                    max_bytes: remora_store::writer::BATCH_BYTES,
                    writers,
                },
            )
            .await
            .unwrap();
            let srv = unlimited_server(&s, &format!("t{max_ops}-{writers}")).await;
            let jobs: Vec<_> = (0..64 * 20).map(|i| job(&srv.id, i, "true")).collect();
            s.insert_jobs(&jobs).await.unwrap();
            let before = s.writer_stats();
            let t0 = std::time::Instant::now();
            // Beside the load: one client submitting single jobs one after the other.
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let submitter = {
                let (s, stop, server) = (s.clone(), stop.clone(), srv.id.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let j = job(&server, 0, "true");
                        let t = std::time::Instant::now();
                        s.insert_job(&j).await.unwrap();
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    lat
                })
            };
            join_all(jobs.chunks(20).map(|part| {
                let s = s.clone();
                async move {
                    for j in part {
                        assert!(matches!(
                            s.claim_job(&j.id, "w").await.unwrap(),
                            Claim::Claimed(_)
                        ));
                        for seq in 0..5 {
                            s.append_output(
                                &j.id,
                                &[chunk(seq, Stream::Stdout, b"hello world\n")],
                                12 * (seq + 1),
                                0,
                                false,
                            )
                            .await
                            .unwrap();
                        }
                        s.finish_job(&j.id, "w", &done()).await.unwrap().unwrap();
                    }
                }
            }))
            .await;
            let took = t0.elapsed().as_secs_f64();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let mut lat = submitter.await.unwrap();
            lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
            let st = s.writer_stats();
            let writes = 64 * 20 * 7;
            eprintln!(
                "{name}: max_ops {max_ops:>3}, writers {writers:>2}: {:.0} writes/s ({} rounds for {} writer ops); \
                 submit p50 {:.2} ms p99 {:.2} ms ({} submits)",
                writes as f64 / took,
                st.rounds - before.rounds,
                st.ops - before.ops,
                p(0.5),
                p(0.99),
                lat.len()
            );
            s.close().await;
        }
    }
}
