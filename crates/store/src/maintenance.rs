//! The maintenance task: packs finished jobs' output (zstd) and enforces the retention policy, in small batches with pauses between them.
//!
//! Every step is a short write transaction of at most `batch` jobs, and the
//! task sleeps `pause` between steps, so on SQLite the single writer is
//! never held for long and job submissions interleave with a purge. Several
//! API instances may run it at once: each step re-checks its condition in
//! the deleting/packing statement, so two instances never both act on a job.

use crate::output::PackOptions;
use crate::retention::RetentionPolicy;
use crate::Store;
use remora_domain::JobStatus;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Settings of the maintenance task (environment, see `MaintenanceArgs`).
#[derive(Debug, Clone)]
pub struct MaintenanceConfig {
    /// Time between passes.
    pub interval: Duration,
    /// Jobs per write transaction (purge and packing).
    pub batch: i64,
    /// Sleep between two batches.
    pub pause: Duration,
    /// Where `export_before_delete` writes; without it such a policy deletes nothing.
    pub export_dir: Option<PathBuf>,
    /// Pack finished jobs' output with zstd.
    pub compress: bool,
    pub compress_level: i32,
    /// Pack a job's output this long after it finished.
    pub compress_after: Duration,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            interval: Duration::from_secs(60),
            batch: 500,
            pause: Duration::from_millis(50),
            export_dir: None,
            compress: true,
            compress_level: 3,
            compress_after: Duration::from_secs(10),
        }
    }
}

/// Environment / flags of the maintenance task (flattened into the API's).
#[derive(Debug, Clone, clap::Args)]
pub struct MaintenanceArgs {
    /// Seconds between retention and compression passes.
    #[arg(long, env = "REMORA_RETENTION_INTERVAL", default_value_t = 60)]
    pub retention_interval_secs: u64,
    /// Jobs deleted or packed per write transaction (1..=10000).
    #[arg(long, env = "REMORA_RETENTION_BATCH", default_value_t = 500)]
    pub retention_batch: i64,
    /// Milliseconds slept between two batches (lets other writers in).
    #[arg(long, env = "REMORA_RETENTION_PAUSE_MS", default_value_t = 50)]
    pub retention_pause_ms: u64,
    /// Directory for the NDJSON export before deletion (`export_before_delete`).
    #[arg(long, env = "REMORA_RETENTION_EXPORT_DIR")]
    pub retention_export_dir: Option<PathBuf>,
    /// Compress finished jobs' output with zstd (`true`/`false`).
    #[arg(long, env = "REMORA_OUTPUT_COMPRESS", default_value_t = true, action = clap::ArgAction::Set)]
    pub output_compress: bool,
    /// zstd level, 1..=19.
    #[arg(long, env = "REMORA_OUTPUT_COMPRESS_LEVEL", default_value_t = 3)]
    pub output_compress_level: i32,
    /// Seconds after a job finished before its output is packed.
    #[arg(long, env = "REMORA_OUTPUT_COMPRESS_AFTER", default_value_t = 10)]
    pub output_compress_after_secs: u64,
}

impl MaintenanceArgs {
    pub fn config(&self) -> MaintenanceConfig {
        MaintenanceConfig {
            interval: Duration::from_secs(self.retention_interval_secs.max(1)),
            batch: self.retention_batch.clamp(1, 10_000),
            pause: Duration::from_millis(self.retention_pause_ms),
            export_dir: self
                .retention_export_dir
                .clone()
                .filter(|d| !d.as_os_str().is_empty()),
            compress: self.output_compress,
            compress_level: self.output_compress_level.clamp(1, 19),
            compress_after: Duration::from_secs(self.output_compress_after_secs),
        }
    }
}

/// What one pass did.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct PassReport {
    pub packed_jobs: u64,
    pub deleted_jobs: u64,
    pub exported_jobs: u64,
    pub batches: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    #[error("export to {0}: {1}")]
    Export(PathBuf, std::io::Error),
    #[error(
        "export_before_delete is set but REMORA_RETENTION_EXPORT_DIR is not: nothing is deleted"
    )]
    NoExportDir,
}

const FINAL: [JobStatus; 4] = [
    JobStatus::Completed,
    JobStatus::Failed,
    JobStatus::TimedOut,
    JobStatus::Canceled,
];

async fn pause(cfg: &MaintenanceConfig, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(cfg.pause) => true,
    }
}

/// Pack every finished job's output that is due, batch by batch.
pub async fn compress_pass(
    store: &Store,
    cfg: &MaintenanceConfig,
    policy: &RetentionPolicy,
    shutdown: &CancellationToken,
    report: &mut PassReport,
) -> Result<(), MaintenanceError> {
    let opts = PackOptions {
        level: cfg.compress_level,
        max_bytes: policy.output_max_bytes,
        settle_ms: cfg.compress_after.as_millis() as i64,
        // Packing reads each job's chunks: smaller batches than purges.
        batch: (cfg.batch / 10).max(1),
    };
    loop {
        let r = store.pack_finished_output(&opts).await?;
        report.batches += 1;
        report.packed_jobs += r.jobs;
        if r.jobs == 0 || !pause(cfg, shutdown).await {
            return Ok(());
        }
    }
}

/// Append jobs to `<dir>/remora-jobs-<UTC day of finished_at>.ndjson` and fsync.
fn export(dir: &std::path::Path, jobs: &[remora_domain::Job]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut by_day: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    for j in jobs {
        let ms = j.finished_at.unwrap_or(j.created_at);
        let day = remora_domain::time::ms_to_rfc3339(ms)
            .get(..10)
            .unwrap_or("unknown")
            .to_string();
        let buf = by_day.entry(day).or_default();
        serde_json::to_writer(&mut *buf, j).map_err(std::io::Error::other)?;
        buf.push(b'\n');
    }
    for (day, buf) in by_day {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("remora-jobs-{day}.ndjson")))?;
        f.write_all(&buf)?;
        f.sync_all()?;
    }
    Ok(())
}

/// Delete every job the policy says is too old, batch by batch.
pub async fn purge_pass(
    store: &Store,
    cfg: &MaintenanceConfig,
    policy: &RetentionPolicy,
    shutdown: &CancellationToken,
    report: &mut PassReport,
) -> Result<(), MaintenanceError> {
    let now = remora_domain::time::now_ms();
    for status in FINAL {
        let Some(days) = policy.jobs_days.days(status) else {
            continue;
        };
        if policy.export_before_delete && cfg.export_dir.is_none() {
            return Err(MaintenanceError::NoExportDir);
        }
        let before = now - days * 86_400_000;
        loop {
            let jobs = store.purge_candidates(status, before, cfg.batch).await?;
            if jobs.is_empty() {
                break;
            }
            if policy.export_before_delete {
                let dir = cfg.export_dir.clone().expect("checked above");
                let batch = jobs.clone();
                let d = dir.clone();
                tokio::task::spawn_blocking(move || export(&d, &batch))
                    .await
                    .map_err(|e| MaintenanceError::Export(dir.clone(), std::io::Error::other(e)))?
                    .map_err(|e| MaintenanceError::Export(dir, e))?;
                report.exported_jobs += jobs.len() as u64;
            }
            let ids: Vec<String> = jobs.into_iter().map(|j| j.id).collect();
            report.deleted_jobs += store.purge_jobs(&ids, status, before).await?;
            report.batches += 1;
            if !pause(cfg, shutdown).await {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// One pass: compression first (it may cut output per the policy), then purges.
pub async fn run_once(
    store: &Store,
    cfg: &MaintenanceConfig,
    shutdown: &CancellationToken,
) -> Result<PassReport, MaintenanceError> {
    let policy = store.retention_policy().await?;
    let mut report = PassReport::default();
    if cfg.compress {
        compress_pass(store, cfg, &policy, shutdown, &mut report).await?;
    }
    purge_pass(store, cfg, &policy, shutdown, &mut report).await?;
    Ok(report)
}

/// Run passes every `cfg.interval` until `shutdown`; errors are logged and the next pass tries again.
pub async fn run(store: Store, cfg: MaintenanceConfig, shutdown: CancellationToken) {
    loop {
        match run_once(&store, &cfg, &shutdown).await {
            Ok(r) if r.deleted_jobs > 0 || r.packed_jobs > 0 => tracing::info!(
                deleted = r.deleted_jobs,
                exported = r.exported_jobs,
                packed = r.packed_jobs,
                "retention pass"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention pass failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(cfg.interval) => {}
        }
    }
}
