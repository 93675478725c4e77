//! Database access shared by the API and the worker.
//!
//! # One query layer for SQLite and PostgreSQL
//! Every query goes through `sqlx::Any` with a single SQL text for both
//! databases. That works because the schema only uses types both sides map
//! identically through `Any`: `TEXT`, `BIGINT` (also for booleans, as 0/1,
//! and for times, as epoch milliseconds), and `BLOB`/`BYTEA` for bytes.
//! Placeholders are written `$1, $2, …`, which PostgreSQL requires and
//! SQLite accepts. Only the migrations differ (one directory per backend, a
//! `BLOB` vs `BYTEA` spelling) and one row lock (`FOR UPDATE`, PostgreSQL
//! only). The test suite runs every query against both databases.
//!
//! SQLite allows one writer at a time; rather than letting concurrent
//! writers collide (`SQLITE_BUSY`), the store keeps a separate write pool
//! with a single connection for SQLite, so writes queue in the pool. On
//! PostgreSQL both pools are the same. The writes every job makes (claim,
//! output appends, final status) and submissions go through the group-commit
//! writer (`writer`), which runs whatever is waiting in one transaction.
//! On an SQLite file that writer has a `rusqlite` connection of its own (`sql`).
//!
//! # One module per aggregate
//! `Store` is one type; its methods live beside the rows they own: `servers`,
//! `secrets` (sealed credentials and PEM files), `jobs` (with `jobs::list`),
//! `output` (with zstd packing), `workers`, `tokens`, `audit`, `stats`, `templates` (with
//! their trigger tokens), `schedules` (with the due-time claim), `notifications` and
//! `retention` (+ the `maintenance` task). This file keeps the
//! connection, the pools, the backend and the migrations. Job statuses in SQL
//! are bound from `JobStatus`, never spelled as literals.

mod audit;
mod batch_read;
mod batches;
#[cfg(feature = "bench")]
mod bench;
pub mod config;
mod credentials;
mod import;
mod jobs;
pub mod maintenance;
pub mod notifications;
mod output;
pub mod retention;
mod schedules;
mod secrets;
mod servers;
mod sql;
mod stats;
mod templates;
mod tokens;
pub mod vault;
mod workers;
pub mod writer;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use std::path::Path;
use std::time::Duration;

pub use audit::AuditEntry;
pub use batch_read::{BatchCellRow, BatchTally, CellFilter, HostOutput, MAX_OUTPUT_PAGE};
pub use batches::BatchRow;
pub use credentials::{Credential, NewCredential, SealedCredential, TrustedCaRow};
pub use import::ImportOp;
pub use jobs::{CancelOutcome, Claim, Finish, JobFilter, Page, QueuedRef, SEARCH_INDEX_BATCH};
pub use notifications::{
    Attempt, ClaimedDelivery, Delivery, DeliveryState, NewTarget, NotifyEvent, Target, TargetKind,
};
pub use output::{CompressionTotals, OutputChunk, PackOptions, PackReport, PendingOutput};
pub use schedules::{JobOrigin, RunStatus, ScheduleRow, ScheduleRun};
pub use secrets::{PemFile, PlainSecrets, ServerSecrets};
pub use servers::{NewServer, ServerPage, ServerQuery, ServerState, REACHABLE_STATUSES};
pub use stats::MinuteCount;
pub use templates::{TemplateRow, TriggerRow};
pub use tokens::TokenRow;
pub use vault::Vault;
pub use workers::WorkerRow;
pub use writer::{BatchLimits, NewAudit, WriterStats};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// An error of the group-commit writer's own SQLite connection (see `sql`).
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A unique index refused the row. `constraint` names it the way
    /// PostgreSQL does (`servers_name_key`, `jobs_pkey`) on both backends,
    /// so the API maps it to the field it concerns.
    #[error("unique constraint `{constraint}` violated")]
    Conflict { constraint: String },
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("unsupported database url `{0}`: use sqlite://PATH or postgres://…")]
    BadUrl(String),
}

impl StoreError {
    /// PostgreSQL refused text it cannot store: a NUL byte (SQLSTATE 22021)
    /// or a character without an equivalent (22P05). The request's fault.
    pub fn is_unstorable_text(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(d)) => {
                matches!(d.code().as_deref(), Some("22021") | Some("22P05"))
            }
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
    /// The group-commit writer of claims, output, final statuses and
    /// submissions (see `writer`).
    writer: std::sync::Arc<writer::Writer>,
    /// SQLite lists: at this many matches a search or filter is "common"
    /// and the page is read along the sort column's index instead of through
    /// the match set (see `search_cond`, `list_jobs_page`).
    dense_matches: i64,
}

/// Default `Store::dense_matches`: sorting fewer matches than this costs a
/// few milliseconds; with more, a match is found every ~200 rows of the
/// list's index or sooner, so scanning that index for a page is cheaper.
pub const DENSE_MATCHES: i64 = 5_000;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The settings of every SQLite connection of the store (sqlx's and the writer's own).
pub(crate) const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;";

/// The default database: SQLite in the data directory.
pub fn default_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("remora.db").display())
}

/// The file of a `sqlite://PATH?…` URL (none for in-memory databases).
fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:")).then(|| path.to_string())
}

fn map_unique(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            let constraint = match d.constraint() {
                Some(c) => c.to_string(),
                None => sqlite_constraint(d.message(), d.code().as_deref() == Some("1555")),
            };
            return StoreError::Conflict { constraint };
        }
    }
    StoreError::Db(e)
}

/// PostgreSQL's default name of the constraint an SQLite unique violation
/// ("UNIQUE constraint failed: servers.name"; code 1555 for a primary key)
/// concerns: `servers_name_key`, `jobs_pkey`.
fn sqlite_constraint(message: &str, primary_key: bool) -> String {
    let cols = message.rsplit(": ").next().unwrap_or(message);
    let mut table = "";
    let mut names = Vec::new();
    for c in cols.split(", ") {
        let (t, col) = c.split_once('.').unwrap_or(("", c));
        table = t;
        names.push(col);
    }
    if primary_key {
        format!("{table}_pkey")
    } else {
        format!("{table}_{}_key", names.join("_"))
    }
}

/// A write transaction on `pool`. On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken at
/// `BEGIN`, waiting up to `busy_timeout` for another process's writer. A deferred `BEGIN` takes
/// it at the first write, and when the transaction (or SQLite preparing its statement) has read
/// by then and another process committed meanwhile, SQLite answers `database is locked` at once
/// instead of waiting (seen with two API processes on one SQLite file firing schedules).
pub(crate) async fn begin_write(
    pool: &AnyPool,
    backend: Backend,
) -> std::result::Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
    match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => pool.begin().await,
    }
}

impl Store {
    /// SQL for "now" in milliseconds since the epoch on the database server's clock, for the
    /// timestamps several processes compare (heartbeats): one clock, whatever each host's says.
    pub(crate) fn db_now_ms(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// Connect and apply migrations. `url` is `sqlite://…` or `postgres://…`.
    /// Group commit with the default [`BatchLimits`].
    pub async fn connect(url: &str) -> Result<Store> {
        Store::connect_with(url, BatchLimits::default()).await
    }

    /// `connect` with the group-commit writer's bounds.
    pub async fn connect_with(url: &str, limits: BatchLimits) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::BadUrl(url.to_string()));
        };
        let (read, write) = match backend {
            Backend::Sqlite => {
                // No ping before each acquire: a SQLite connection is a file, it does not drop,
                // and the ping is one more round trip to sqlx's connection thread per statement.
                let opts = || {
                    AnyPoolOptions::new()
                        .test_before_acquire(false)
                        .after_connect(|conn, _| {
                            Box::pin(async move {
                                use sqlx::Executor;
                                conn.execute(SQLITE_PRAGMAS).await?;
                                Ok(())
                            })
                        })
                };
                let write = opts().max_connections(1).connect(url).await?;
                // Processes starting together on a fresh data dir (API and a
                // worker) must not both run the migrations: a file lock
                // beside the database serialises them.
                let _lock = match sqlite_path(url) {
                    Some(db) => {
                        let lock_path = format!("{db}.migrate.lock");
                        Some(
                            tokio::task::spawn_blocking(
                                move || -> std::io::Result<std::fs::File> {
                                    let f = std::fs::OpenOptions::new()
                                        .create(true)
                                        .truncate(false)
                                        .write(true)
                                        .open(&lock_path)?;
                                    f.lock()?;
                                    Ok(f)
                                },
                            )
                            .await
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?
                            .map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?,
                        )
                    }
                    None => None,
                };
                SQLITE_MIGRATOR.run(&write).await?;
                let read = opts().max_connections(8).connect(url).await?;
                (read, write)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await?;
                POSTGRES_MIGRATOR.run(&pool).await?;
                let indexed: Option<i64> = sqlx::query(
                    "SELECT CAST(1 AS BIGINT) FROM pg_indexes WHERE indexname = 'jobs_search_trgm'",
                )
                .fetch_optional(&pool)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
                if indexed.is_none() {
                    tracing::warn!(
                        "PostgreSQL extension pg_trgm could not be created (needs the contrib \
                         files and CREATE on the database): job search scans the jobs table"
                    );
                }
                (pool.clone(), pool)
            }
        };
        let writer = std::sync::Arc::new(writer::Writer::start(
            write.clone(),
            backend,
            limits,
            sqlite_path(url),
        )?);
        Ok(Store {
            read,
            write,
            backend,
            writer,
            dense_matches: DENSE_MATCHES,
        })
    }

    /// Set the SQLite list threshold (`DENSE_MATCHES`); tests use
    /// it to take both search paths on a small table.
    #[doc(hidden)]
    pub fn with_dense_matches(mut self, matches: i64) -> Store {
        self.dense_matches = matches.max(1);
        self
    }

    /// Group-commit totals so far (rounds, operations, fallbacks).
    pub fn writer_stats(&self) -> WriterStats {
        self.writer.stats()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite_path;

    #[test]
    fn sqlite_path_of_a_url() {
        assert_eq!(
            sqlite_path("sqlite:///data/remora.db?mode=rwc").as_deref(),
            Some("/data/remora.db")
        );
        assert_eq!(sqlite_path("sqlite:rel.db").as_deref(), Some("rel.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }
}
