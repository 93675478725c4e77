//! Retention and packed output: compressed output reads back bytes-exact through every reader; purges go in batches, delete only what the policy names and export first.

use crate::{job, server, unlimited_server};
use remora_domain::{JobStatus, Stream};
use remora_store::maintenance::{self, MaintenanceConfig, PassReport};
use remora_store::retention::{JobRetention, RetentionPolicy};
use remora_store::{JobFilter, OutputChunk, PackOptions, Store};
use tokio_util::sync::CancellationToken;

const DAY: i64 = 86_400_000;

fn chunks(seed: u8) -> Vec<OutputChunk> {
    let mut v = Vec::new();
    for i in 0..40i64 {
        let data = if i % 7 == 3 {
            // Not UTF-8, with NULs.
            vec![0, 0xff, seed, 0xfe, 0]
        } else {
            format!("2026-12-01T22:00:{i:02}Z INFO request id={i} path=/api/v1/jobs status=200\n")
                .into_bytes()
        };
        v.push(OutputChunk {
            seq: i,
            stream: if i % 5 == 4 {
                Stream::Stderr
            } else {
                Stream::Stdout
            },
            data,
        });
    }
    v
}

async fn finished_job(
    s: &Store,
    server_id: &str,
    status: JobStatus,
    out: &[OutputChunk],
) -> String {
    let j = job(server_id, 1000, "echo x");
    s.insert_job(&j).await.unwrap();
    if !out.is_empty() {
        s.append_output(&j.id, out, 1, 1, false).await.unwrap();
    }
    assert!(s.force_finish(&j.id, status, "done", "test").await.unwrap());
    j.id
}

async fn packed_output_reads_back_bytes_exact(s: &Store) {
    let a = unlimited_server(s, "alpha").await;
    let out = chunks(7);
    let id = finished_job(s, &a.id, JobStatus::Completed, &out).await;
    let empty = finished_job(s, &a.id, JobStatus::Failed, &[]).await;
    let before_out = s.job_output(&id).await.unwrap();
    let before_tail = s.output_chunks(&id, 20).await.unwrap();
    let opts = PackOptions {
        level: 3,
        max_bytes: None,
        settle_ms: 0,
        batch: 10,
    };
    let r = s.pack_finished_output(&opts).await.unwrap();
    assert_eq!(
        r.jobs, 2,
        "both finished jobs are packed (one had no output)"
    );
    assert!(r.stored_bytes < r.raw_bytes / 3, "compressed: {r:?}");
    assert!(s.output_is_packed(&id).await.unwrap());
    assert!(!s.output_is_packed(&empty).await.unwrap());
    assert_eq!(
        s.pack_finished_output(&opts).await.unwrap().jobs,
        0,
        "nothing left"
    );
    assert_eq!(s.job_output(&id).await.unwrap(), before_out);
    assert_eq!(s.output_chunks(&id, -1).await.unwrap(), out);
    assert_eq!(
        s.output_chunks(&id, 20).await.unwrap(),
        before_tail,
        "replay after a seq"
    );
    assert_eq!(s.job_output(&empty).await.unwrap(), (vec![], vec![]));
    let t = s.compression_totals().await.unwrap();
    assert_eq!(t.jobs, 1);
    assert_eq!(t.raw_bytes as u64, r.raw_bytes);
    assert!(t.ratio.unwrap() > 3.0, "{t:?}");
    // A running job is never packed.
    let running = job(&a.id, 2000, "sleep");
    s.insert_job(&running).await.unwrap();
    s.append_output(&running.id, &out[..2], 1, 1, false)
        .await
        .unwrap();
    assert_eq!(s.pack_finished_output(&opts).await.unwrap().jobs, 0);
    assert!(!s.output_is_packed(&running.id).await.unwrap());
}
on_both!(packed_output_reads_back_bytes_exact);

async fn packing_keeps_at_most_max_bytes(s: &Store) {
    let a = unlimited_server(s, "alpha").await;
    let out = chunks(1);
    let id = finished_job(s, &a.id, JobStatus::Completed, &out).await;
    let opts = PackOptions {
        level: 3,
        max_bytes: Some(1024),
        settle_ms: 0,
        batch: 10,
    };
    s.pack_finished_output(&opts).await.unwrap();
    let kept = s.output_chunks(&id, -1).await.unwrap();
    let all: Vec<u8> = out.iter().flat_map(|c| c.data.clone()).collect();
    let got: Vec<u8> = kept.iter().flat_map(|c| c.data.clone()).collect();
    assert_eq!(got.len(), 1024);
    assert_eq!(got, all[..1024]);
    assert!(s.get_job(&id).await.unwrap().unwrap().truncated);
}
on_both!(packing_keeps_at_most_max_bytes);

async fn purge_goes_in_batches_and_keeps_the_rest(s: &Store) {
    let a = s.insert_server(&server("alpha")).await.unwrap();
    let now = remora_domain::time::now_ms();
    let mut old_completed = Vec::new();
    for _ in 0..7 {
        let id = finished_job(s, &a.id, JobStatus::Completed, &chunks(2)[..3]).await;
        s.set_finished_at(&id, now - 40 * DAY).await.unwrap();
        old_completed.push(id);
    }
    // Kept: a recent completed job, an old failed one (failed: 90 days),
    // an old canceled one (no policy), and a queued one.
    let recent = finished_job(s, &a.id, JobStatus::Completed, &chunks(3)[..2]).await;
    s.set_finished_at(&recent, now - 10 * DAY).await.unwrap();
    let old_failed = finished_job(s, &a.id, JobStatus::Failed, &[]).await;
    s.set_finished_at(&old_failed, now - 40 * DAY)
        .await
        .unwrap();
    let very_old_failed = finished_job(s, &a.id, JobStatus::Failed, &chunks(4)[..1]).await;
    s.set_finished_at(&very_old_failed, now - 100 * DAY)
        .await
        .unwrap();
    let old_canceled = finished_job(s, &a.id, JobStatus::Canceled, &[]).await;
    s.set_finished_at(&old_canceled, now - 400 * DAY)
        .await
        .unwrap();
    let queued = job(&a.id, 1, "echo q");
    s.insert_job(&queued).await.unwrap();

    let export = tempfile::tempdir().unwrap();
    let policy = RetentionPolicy {
        jobs_days: JobRetention {
            completed: Some(30),
            failed: Some(90),
            ..Default::default()
        },
        output_max_bytes: None,
        export_before_delete: true,
    };
    s.set_retention_policy(&policy).await.unwrap();
    assert_eq!(s.retention_policy().await.unwrap(), policy);
    let cfg = MaintenanceConfig {
        batch: 3,
        pause: std::time::Duration::ZERO,
        export_dir: Some(export.path().to_path_buf()),
        compress: false,
        ..Default::default()
    };
    let r = maintenance::run_once(s, &cfg, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        r,
        PassReport {
            packed_jobs: 0,
            deleted_jobs: 8,
            exported_jobs: 8,
            // completed: 3 + 3 + 1; failed: 1
            batches: 4,
        }
    );
    for id in old_completed.iter().chain([&very_old_failed]) {
        assert!(s.get_job(id).await.unwrap().is_none(), "{id} purged");
        assert!(
            s.output_chunks(id, -1).await.unwrap().is_empty(),
            "{id}'s output purged"
        );
    }
    for id in [&recent, &old_failed, &old_canceled, &queued.id] {
        assert!(s.get_job(id).await.unwrap().is_some(), "{id} kept");
    }
    // The search index follows the deletes (on SQLite, by its own keys: migration 0018).
    let found = |id: &str| {
        let f = JobFilter {
            page: 1,
            limit: 10,
            search: Some(id.to_string()),
            ..Default::default()
        };
        async move { s.list_jobs(&f).await.unwrap().0.len() }
    };
    for id in old_completed.iter().chain([&very_old_failed]) {
        assert_eq!(found(id).await, 0, "{id} is gone from the search index");
    }
    for id in [&recent, &old_failed, &old_canceled, &queued.id] {
        assert_eq!(found(id).await, 1, "{id} is still found by search");
    }
    let want_out: Vec<u8> = chunks(3)[..2].iter().flat_map(|c| c.data.clone()).collect();
    assert_eq!(s.job_output(&recent).await.unwrap().0, want_out);
    // The export: one file per UTC day, one line per job, the /jobs/export format.
    let mut lines = Vec::new();
    for e in std::fs::read_dir(export.path()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            name.starts_with("remora-jobs-") && name.ends_with(".ndjson"),
            "{name}"
        );
        for l in std::fs::read_to_string(&p).unwrap().lines() {
            let j: remora_domain::Job = serde_json::from_str(l).unwrap();
            lines.push(j.id);
        }
    }
    lines.sort();
    let mut want: Vec<String> = old_completed.clone();
    want.push(very_old_failed.clone());
    want.sort();
    assert_eq!(lines, want);
    // A second pass finds nothing.
    let r = maintenance::run_once(s, &cfg, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(r.deleted_jobs, 0);
    // Export asked for without a directory: refused, nothing deleted.
    let old = finished_job(s, &a.id, JobStatus::Completed, &[]).await;
    s.set_finished_at(&old, now - 40 * DAY).await.unwrap();
    let no_dir = MaintenanceConfig {
        export_dir: None,
        ..cfg.clone()
    };
    assert!(maintenance::run_once(s, &no_dir, &CancellationToken::new())
        .await
        .is_err());
    assert!(s.get_job(&old).await.unwrap().is_some());
}
on_both!(purge_goes_in_batches_and_keeps_the_rest);

#[test]
fn policy_validation_names_the_field() {
    let p = RetentionPolicy {
        jobs_days: JobRetention {
            failed: Some(0),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(p.validate().unwrap_err().0, "jobs_days.failed");
    let p = RetentionPolicy {
        output_max_bytes: Some(10),
        ..Default::default()
    };
    assert_eq!(p.validate().unwrap_err().0, "output_max_bytes");
    assert!(RetentionPolicy::default().validate().is_ok());
    assert!(serde_json::from_str::<RetentionPolicy>(r#"{"jobs_days":{"done":3}}"#).is_err());
}
