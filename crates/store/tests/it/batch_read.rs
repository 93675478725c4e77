//! The batch page's reads: counts and exit codes in SQL, the grid filtered and
//! paged in SQL, hosts with their output a page at a time (loose and packed).

use crate::{job, server};
use remora_domain::batch::{BatchStatus, OnFail};
use remora_domain::{Job, JobStatus, Stream};
use remora_store::{BatchRow, CellFilter, OutputChunk, PackOptions, Store};

/// A job of `batch` that is to end `status` with `code` (see [`finish`]).
fn finished(mut j: Job, batch: &str, status: JobStatus, code: Option<i64>) -> Job {
    j.batch_id = Some(batch.into());
    j.exit_code = code;
    j.status = status;
    j
}

/// Claim and finish the jobs as [`finished`] described them (inserted queued).
async fn finish(s: &Store, jobs: &[Job]) {
    for j in jobs.iter().filter(|j| j.status.is_final()) {
        assert!(matches!(
            s.claim_job(&j.id, "w1").await.unwrap(),
            remora_store::Claim::Claimed(_)
        ));
        let failed = j.status == JobStatus::Failed;
        let f = remora_store::Finish {
            status: Some(j.status),
            exit_code: j.exit_code,
            exit_signal: None,
            error: failed.then(|| "boom".into()),
            error_code: failed.then(|| "exit_nonzero".into()),
        };
        s.finish_job(&j.id, "w1", &f).await.unwrap();
    }
}

fn queued(jobs: &[Job]) -> Vec<Job> {
    jobs.iter()
        .cloned()
        .map(|mut j| {
            j.status = JobStatus::Queued;
            j.exit_code = None;
            j
        })
        .collect()
}

fn row(id: &str, total: i64) -> BatchRow {
    BatchRow {
        id: id.into(),
        total,
        max_parallel: 0,
        fail_threshold: 0,
        on_fail: OnFail::Stop,
        state: BatchStatus::Running,
        source_batch_id: None,
        created_at: 1,
        stopped_at: None,
    }
}

fn chunk(seq: i64, stream: Stream, data: &[u8]) -> OutputChunk {
    OutputChunk {
        seq,
        stream,
        data: data.to_vec(),
    }
}

/// Six hosts of batch `b1` (and one of `b2`, which must never show):
/// alpha/beta/gamma-2 completed 0 with `hi\n`, `hi\n`, `hI\n` (one byte apart),
/// alpha and gamma-2 failed 1 with stderr `boom`, beta still queued.
async fn fleet(s: &Store) -> Vec<Job> {
    let a = s.insert_server(&server("alpha")).await.unwrap();
    let b = s.insert_server(&server("beta")).await.unwrap();
    let g = s.insert_server(&server("gamma-2")).await.unwrap();
    let jobs = vec![
        finished(job(&a.id, 10, "x"), "b1", JobStatus::Completed, Some(0)),
        finished(job(&b.id, 20, "x"), "b1", JobStatus::Completed, Some(0)),
        finished(job(&g.id, 30, "x"), "b1", JobStatus::Completed, Some(0)),
        finished(job(&a.id, 40, "x"), "b1", JobStatus::Failed, Some(1)),
        finished(job(&b.id, 50, "x"), "b1", JobStatus::Queued, None),
        finished(job(&g.id, 60, "x"), "b1", JobStatus::Failed, Some(1)),
    ];
    s.insert_batch(&row("b1", 6), &queued(&jobs)).await.unwrap();
    let other = finished(job(&a.id, 5, "x"), "b2", JobStatus::Completed, Some(7));
    s.insert_batch(&row("b2", 1), &queued(std::slice::from_ref(&other)))
        .await
        .unwrap();
    finish(s, &jobs).await;
    finish(s, std::slice::from_ref(&other)).await;
    // Output split over several chunks and appends.
    let out = |s: &'static [u8]| s;
    for (j, data) in [
        (&jobs[0], out(b"hi\n")),
        (&jobs[1], out(b"hi\n")),
        (&jobs[2], out(b"hI\n")),
    ] {
        s.append_output(&j.id, &[chunk(0, Stream::Stdout, &data[..1])], 1, 0, false)
            .await
            .unwrap();
        s.append_output(&j.id, &[chunk(1, Stream::Stdout, &data[1..])], 3, 0, false)
            .await
            .unwrap();
    }
    for j in [&jobs[3], &jobs[5]] {
        s.append_output(
            &j.id,
            &[
                chunk(0, Stream::Stderr, b"bo"),
                chunk(1, Stream::Stdout, b""),
                chunk(2, Stream::Stderr, b"om"),
            ],
            0,
            4,
            false,
        )
        .await
        .unwrap();
    }
    s.append_output(&other.id, &[chunk(0, Stream::Stdout, b"hi\n")], 3, 0, false)
        .await
        .unwrap();
    jobs
}

async fn tally_counts_in_sql(s: &Store) {
    fleet(s).await;
    let t = s.batch_tally("b1").await.unwrap();
    assert_eq!(
        (
            t.counts.completed,
            t.counts.failed,
            t.counts.queued,
            t.counts.total()
        ),
        (3, 2, 1, 6)
    );
    let codes: Vec<(Option<i64>, u64)> = t.exit_codes.into_iter().collect();
    assert_eq!(codes, vec![(None, 1), (Some(0), 3), (Some(1), 2)]);
    assert_eq!(t.first_created_at, Some(10));
    let none = s.batch_tally("nope").await.unwrap();
    assert_eq!(none.counts.total(), 0);
    assert_eq!(none.first_created_at, None);
}
on_both!(tally_counts_in_sql);

async fn cells_filter_and_page_in_sql(s: &Store) {
    let jobs = fleet(s).await;
    let f = |status, search: Option<&str>, offset, limit| CellFilter {
        status,
        search: search.map(String::from),
        offset,
        limit,
    };
    let ids = |cells: &[remora_store::BatchCellRow]| -> Vec<String> {
        cells.iter().map(|c| c.job_id.clone()).collect()
    };
    // Everything, in submission order, with the server's name.
    let (n, all) = s.batch_cells("b1", &f(None, None, 0, 100)).await.unwrap();
    assert_eq!(n, 6);
    assert_eq!(
        ids(&all),
        jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>()
    );
    assert_eq!(all[2].server_name.as_deref(), Some("gamma-2"));
    assert_eq!(all[3].status, JobStatus::Failed);
    assert_eq!(all[3].exit_code, Some(1));
    assert_eq!(all[3].error.as_deref(), Some("boom"));
    // A page.
    let (n, page) = s.batch_cells("b1", &f(None, None, 1, 2)).await.unwrap();
    assert_eq!(
        (n, ids(&page)),
        (6, vec![jobs[1].id.clone(), jobs[2].id.clone()])
    );
    // Only the count; past the end.
    assert_eq!(
        s.batch_cells("b1", &f(None, None, 0, 0)).await.unwrap(),
        (6, vec![])
    );
    assert_eq!(
        s.batch_cells("b1", &f(None, None, 6, 10)).await.unwrap(),
        (6, vec![])
    );
    // By status.
    let (n, failed) = s
        .batch_cells("b1", &f(Some(JobStatus::Failed), None, 0, 10))
        .await
        .unwrap();
    assert_eq!(
        (n, ids(&failed)),
        (2, vec![jobs[3].id.clone(), jobs[5].id.clone()])
    );
    // Search: name, case-insensitive; combined with status; by server id; wildcards are literal.
    let (n, g) = s
        .batch_cells("b1", &f(None, Some("GAM"), 0, 10))
        .await
        .unwrap();
    assert_eq!(
        (n, ids(&g)),
        (2, vec![jobs[2].id.clone(), jobs[5].id.clone()])
    );
    let (n, _) = s
        .batch_cells("b1", &f(Some(JobStatus::Completed), Some("gam"), 0, 10))
        .await
        .unwrap();
    assert_eq!(n, 1);
    let (n, _) = s
        .batch_cells(
            "b1",
            &f(
                None,
                Some(&jobs[1].server_id[jobs[1].server_id.len() - 12..]),
                0,
                10,
            ),
        )
        .await
        .unwrap();
    assert_eq!(n, 2, "beta's two jobs by its id");
    assert_eq!(
        s.batch_cells("b1", &f(None, Some("a%"), 0, 10))
            .await
            .unwrap()
            .0,
        0
    );
    assert_eq!(
        s.batch_cells("b1", &f(None, Some("gamma_2"), 0, 10))
            .await
            .unwrap()
            .0,
        0
    );
    // Another batch's hosts never show.
    assert_eq!(
        s.batch_cells("b2", &f(None, None, 0, 10)).await.unwrap().0,
        1
    );
}
on_both!(cells_filter_and_page_in_sql);

/// Every host of `b1` with output, four per page.
async fn read_all(s: &Store) -> Vec<remora_store::HostOutput> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .batch_outputs_page("b1", None, after.take(), 4)
            .await
            .unwrap();
        assert!(page.len() <= 4);
        let Some(last) = page.last() else { break };
        after = Some((last.created_at, last.job_id.clone()));
        let full = page.len() == 4;
        all.extend(page);
        if !full {
            break;
        }
    }
    all
}

async fn outputs_page_bytes_exact_loose_and_packed(s: &Store) {
    let jobs = fleet(s).await;
    let check = |all: &[remora_store::HostOutput]| {
        let got: Vec<(&str, &[u8], &[u8], Option<i64>)> = all
            .iter()
            .map(|h| (h.job_id.as_str(), &h.stdout[..], &h.stderr[..], h.exit_code))
            .collect();
        let want: Vec<(&str, &[u8], &[u8], Option<i64>)> = vec![
            (&jobs[0].id, b"hi\n", b"", Some(0)),
            (&jobs[1].id, b"hi\n", b"", Some(0)),
            (&jobs[2].id, b"hI\n", b"", Some(0)),
            (&jobs[3].id, b"", b"boom", Some(1)),
            (&jobs[4].id, b"", b"", None),
            (&jobs[5].id, b"", b"boom", Some(1)),
        ];
        assert_eq!(got, want);
        assert_eq!(all[3].error_code.as_deref(), Some("exit_nonzero"));
        assert_eq!(all[3].server_name.as_deref(), Some("alpha"));
        assert!(all[3].finished_at.is_some() && all[3].started_at.is_some());
        assert_eq!(all[4].finished_at, None);
    };
    check(&read_all(s).await);
    // Packed (the finished jobs), then read again: the same bytes.
    let opts = PackOptions {
        level: 3,
        max_bytes: None,
        settle_ms: 0,
        batch: 100,
    };
    assert!(s.pack_finished_output(&opts).await.unwrap().jobs >= 5);
    check(&read_all(s).await);
    // A status filter.
    let failed = s
        .batch_outputs_page("b1", Some(JobStatus::Failed), None, 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|h| h.stderr == b"boom"));
}
on_both!(outputs_page_bytes_exact_loose_and_packed);
