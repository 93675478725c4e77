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
//! PostgreSQL both pools are the same.

pub mod config;
pub mod vault;

use remora_domain::{AuthType, Job, JobKind, JobStatus, Server, Stream};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub use vault::Vault;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
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

/// Fields the API sets when creating a server (secrets already sealed).
#[derive(Debug, Clone, Default)]
pub struct NewServer {
    pub name: String,
    pub hostname: String,
    pub port: i64,
    pub user: String,
    pub auth_type: Option<AuthType>,
    pub password_enc: Option<Vec<u8>>,
    pub private_key_enc: Option<Vec<u8>>,
    pub passphrase_enc: Option<Vec<u8>>,
    pub pem_file_id: Option<String>,
    pub is_active: bool,
    pub tags: Vec<String>,
    pub max_concurrency: i64,
}

/// A server's sealed credentials, for the worker and connection tests.
#[derive(Debug, Clone)]
pub struct ServerSecrets {
    pub password_enc: Option<Vec<u8>>,
    pub private_key_enc: Option<Vec<u8>>,
    pub passphrase_enc: Option<Vec<u8>>,
    pub pem_file_enc: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub page: i64,
    pub limit: i64,
    pub status: Option<JobStatus>,
    pub server_id: Option<String>,
    pub batch_id: Option<String>,
    pub search: Option<String>,
    /// One of created_at, started_at, finished_at, priority, status.
    pub sort_by: Option<String>,
    pub ascending: bool,
    /// Epoch ms bounds on created_at: `>= created_after`, `< created_before`.
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    /// Count matching rows only up to this many (0 = exact count). Counting
    /// a million rows costs far more than reading a page.
    pub count_cap: i64,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Matching rows, or `count_cap` when there are at least that many.
    pub total: i64,
    /// False when `total` stopped at the cap.
    pub total_exact: bool,
    /// Whether a next page exists (read, not derived from the count).
    pub has_next: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The job is now `running` on this worker.
    Claimed(Box<Job>),
    /// The server is at its `max_concurrency`: put the message back.
    Busy,
    /// The job is not `queued` any more (canceled, already finished, gone).
    NotQueued,
}

#[derive(Debug, Clone, Default)]
pub struct Finish {
    pub status: Option<JobStatus>,
    pub exit_code: Option<i64>,
    pub exit_signal: Option<String>,
    pub error: Option<String>,
    pub error_code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// It was queued and is now canceled.
    CanceledQueued,
    /// It is running; the worker was asked to stop it.
    Requested,
    /// Already in a final state.
    AlreadyFinal(JobStatus),
    NotFound,
}

#[derive(Debug, Clone)]
pub struct OutputChunk {
    pub seq: i64,
    pub stream: Stream,
    pub data: Vec<u8>,
}

/// A server's credentials, decrypted.
#[derive(Clone, Default)]
pub struct PlainSecrets {
    pub password: Option<String>,
    pub private_key: Option<String>,
    pub passphrase: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PemFile {
    pub id: String,
    pub key_type: String,
    pub fingerprint: String,
    pub size: i64,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub role: String,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "remora_domain::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub token_id: Option<String>,
    pub action: String,
    pub object_type: String,
    pub object_id: Option<String>,
    pub detail: Option<String>,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MinuteCount {
    /// Start of the minute, epoch ms.
    pub minute: i64,
    pub completed: i64,
    /// failed + timed_out
    pub failed: i64,
    pub canceled: i64,
    pub total: i64,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct WorkerRow {
    pub id: String,
    pub hostname: String,
    pub version: String,
    pub concurrency: i64,
    pub running: i64,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: i64,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_heartbeat_at: i64,
    pub status: String,
}

const JOB_COLS: &str = "id, kind, command, args, script, shell, server_id, batch_id, status, priority, timeout_secs, exit_code, exit_signal, error, error_code, attempt, max_retries, worker_id, cancel_requested, created_at, started_at, finished_at, stdout_bytes, stderr_bytes, truncated";
const SERVER_COLS: &str = "id, name, hostname, port, username, auth_type, password_enc IS NOT NULL AS has_pw, private_key_enc IS NOT NULL AS has_key, pem_file_id, is_active, tags, max_concurrency, host_key_fingerprint, last_status, last_checked_at, created_at, updated_at";

fn job_from_row(r: &AnyRow) -> Result<Job> {
    let kind: String = r.try_get("kind")?;
    let status: String = r.try_get("status")?;
    let args: String = r.try_get("args")?;
    Ok(Job {
        id: r.try_get("id")?,
        kind: JobKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("job kind {kind}")))?,
        command: r.try_get("command")?,
        args: serde_json::from_str(&args).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        script: r.try_get("script")?,
        shell: r.try_get("shell")?,
        server_id: r.try_get("server_id")?,
        batch_id: r.try_get("batch_id")?,
        status: JobStatus::from_str(&status).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        priority: r.try_get("priority")?,
        timeout: r.try_get("timeout_secs")?,
        exit_code: r.try_get("exit_code")?,
        exit_signal: r.try_get("exit_signal")?,
        error: r.try_get("error")?,
        error_code: r.try_get("error_code")?,
        attempt: r.try_get("attempt")?,
        max_retries: r.try_get("max_retries")?,
        worker_id: r.try_get("worker_id")?,
        cancel_requested: r.try_get::<i64, _>("cancel_requested")? != 0,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        stdout_bytes: r.try_get("stdout_bytes")?,
        stderr_bytes: r.try_get("stderr_bytes")?,
        truncated: r.try_get::<i64, _>("truncated")? != 0,
    })
}

fn bool_col(r: &AnyRow, col: &str) -> Result<bool> {
    // `x IS NOT NULL` is a boolean on PostgreSQL and an integer on SQLite.
    if let Ok(b) = r.try_get::<bool, _>(col) {
        return Ok(b);
    }
    Ok(r.try_get::<i64, _>(col)? != 0)
}

fn server_from_row(r: &AnyRow) -> Result<Server> {
    let auth: String = r.try_get("auth_type")?;
    let tags: String = r.try_get("tags")?;
    Ok(Server {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        hostname: r.try_get("hostname")?,
        port: r.try_get("port")?,
        user: r.try_get("username")?,
        auth_type: AuthType::parse(&auth)
            .ok_or_else(|| StoreError::Corrupt(format!("auth type {auth}")))?,
        is_active: r.try_get::<i64, _>("is_active")? != 0,
        tags: serde_json::from_str(&tags).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        max_concurrency: r.try_get("max_concurrency")?,
        host_key_fingerprint: r.try_get("host_key_fingerprint")?,
        has_password: bool_col(r, "has_pw")?,
        has_private_key: bool_col(r, "has_key")?,
        pem_file_id: r.try_get("pem_file_id")?,
        last_status: r.try_get("last_status")?,
        last_checked_at: r.try_get("last_checked_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn pem_from_row(r: &AnyRow) -> Result<PemFile> {
    Ok(PemFile {
        id: r.try_get(0)?,
        key_type: r.try_get(1)?,
        fingerprint: r.try_get(2)?,
        size: r.try_get(3)?,
        created_at: r.try_get(4)?,
    })
}

fn worker_from_row(r: &AnyRow) -> Result<WorkerRow> {
    Ok(WorkerRow {
        id: r.try_get("id")?,
        hostname: r.try_get("hostname")?,
        version: r.try_get("version")?,
        concurrency: r.try_get("concurrency")?,
        running: r.try_get("running")?,
        started_at: r.try_get("started_at")?,
        last_heartbeat_at: r.try_get("last_heartbeat_at")?,
        status: r.try_get("status")?,
    })
}

fn like_pattern(s: &str) -> String {
    let mut p = String::from("%");
    for c in s.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// What a free-text search looks in (store::search_cond); the PostgreSQL
/// trigram index of migration 0004 is on exactly this expression.
const SEARCH_TEXT: &str =
    "LOWER(id || ' ' || COALESCE(command, '') || ' ' || COALESCE(script, ''))";

/// `n` as a count capped at `cap` (0 = uncapped).
fn capped(n: i64, cap: i64) -> i64 {
    if cap > 0 {
        n.min(cap)
    } else {
        n
    }
}

fn insert_job_query(
    j: &Job,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments<'static>> {
    sqlx::query(
        "INSERT INTO jobs (id, kind, command, args, script, shell, server_id, batch_id, status, priority, timeout_secs, attempt, max_retries, cancel_requested, created_at, stdout_bytes, stderr_bytes, truncated)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, 0, $13, 0, 0, 0)",
    )
    .bind(j.id.clone())
    .bind(j.kind.as_str())
    .bind(j.command.clone())
    .bind(serde_json::to_string(&j.args).unwrap_or_else(|_| "[]".into()))
    .bind(j.script.clone())
    .bind(j.shell.clone())
    .bind(j.server_id.clone())
    .bind(j.batch_id.clone())
    .bind(j.status.as_str())
    .bind(j.priority)
    .bind(j.timeout)
    .bind(j.max_retries)
    .bind(j.created_at)
}

impl Store {
    /// Connect and apply migrations. `url` is `sqlite://…` or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Store> {
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
                let opts = || {
                    AnyPoolOptions::new().after_connect(|conn, _| {
                        Box::pin(async move {
                            use sqlx::Executor;
                            conn.execute("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
                                .await?;
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
        Ok(Store {
            read,
            write,
            backend,
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

    // ---------------------------------------------------------------- servers

    pub async fn insert_server(&self, s: &NewServer) -> Result<Server> {
        let id = remora_domain::new_id();
        let now = remora_domain::time::now_ms();
        let auth = s.auth_type.unwrap_or(if s.password_enc.is_some() {
            AuthType::Password
        } else {
            AuthType::Key
        });
        sqlx::query(
            "INSERT INTO servers (id, name, hostname, port, username, auth_type, password_enc, private_key_enc, passphrase_enc, pem_file_id, is_active, tags, max_concurrency, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&id)
        .bind(&s.name)
        .bind(&s.hostname)
        .bind(s.port)
        .bind(&s.user)
        .bind(auth.as_str())
        .bind(s.password_enc.clone())
        .bind(s.private_key_enc.clone())
        .bind(s.passphrase_enc.clone())
        .bind(s.pem_file_id.clone())
        .bind(s.is_active as i64)
        .bind(serde_json::to_string(&s.tags).unwrap_or_else(|_| "[]".into()))
        .bind(s.max_concurrency)
        .bind(now)
        .bind(now)
        .execute(&self.write)
        .await
        .map_err(map_unique)?;
        self.get_server(&id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("inserted server vanished".into()))
    }

    /// Replace every settable field of a server (the caller merges partial
    /// updates, keeping sealed secrets it does not change).
    pub async fn update_server(&self, id: &str, s: &NewServer) -> Result<bool> {
        let auth = s.auth_type.unwrap_or(if s.password_enc.is_some() {
            AuthType::Password
        } else {
            AuthType::Key
        });
        let r = sqlx::query(
            "UPDATE servers SET name = $1, hostname = $2, port = $3, username = $4, auth_type = $5, password_enc = $6, private_key_enc = $7,
                 passphrase_enc = $8, pem_file_id = $9, is_active = $10, tags = $11, max_concurrency = $12, updated_at = $13 WHERE id = $14",
        )
        .bind(&s.name)
        .bind(&s.hostname)
        .bind(s.port)
        .bind(&s.user)
        .bind(auth.as_str())
        .bind(s.password_enc.clone())
        .bind(s.private_key_enc.clone())
        .bind(s.passphrase_enc.clone())
        .bind(s.pem_file_id.clone())
        .bind(s.is_active as i64)
        .bind(serde_json::to_string(&s.tags).unwrap_or_else(|_| "[]".into()))
        .bind(s.max_concurrency)
        .bind(remora_domain::time::now_ms())
        .bind(id)
        .execute(&self.write)
        .await
        .map_err(map_unique)?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn list_servers(&self) -> Result<Vec<Server>> {
        let rows = sqlx::query(&format!("SELECT {SERVER_COLS} FROM servers ORDER BY name"))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(server_from_row).collect()
    }

    pub async fn get_server(&self, id: &str) -> Result<Option<Server>> {
        let row = sqlx::query(&format!("SELECT {SERVER_COLS} FROM servers WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(server_from_row).transpose()
    }

    pub async fn get_server_by_name(&self, name: &str) -> Result<Option<Server>> {
        let row = sqlx::query(&format!(
            "SELECT {SERVER_COLS} FROM servers WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(server_from_row).transpose()
    }

    pub async fn server_secrets(&self, id: &str) -> Result<Option<ServerSecrets>> {
        let row = sqlx::query(
            "SELECT s.password_enc, s.private_key_enc, s.passphrase_enc, p.content_enc
             FROM servers s LEFT JOIN pem_files p ON p.id = s.pem_file_id WHERE s.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            Ok(ServerSecrets {
                password_enc: r.try_get(0)?,
                private_key_enc: r.try_get(1)?,
                passphrase_enc: r.try_get(2)?,
                pem_file_enc: r.try_get(3)?,
            })
        })
        .transpose()
    }

    /// Trust on first use: pin `fingerprint` if the server has none yet.
    /// Returns the fingerprint now pinned.
    pub async fn pin_host_key(&self, id: &str, fingerprint: &str) -> Result<Option<String>> {
        sqlx::query("UPDATE servers SET host_key_fingerprint = $1 WHERE id = $2 AND host_key_fingerprint IS NULL")
            .bind(fingerprint)
            .bind(id)
            .execute(&self.write)
            .await?;
        let row = sqlx::query("SELECT host_key_fingerprint FROM servers WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.and_then(|r| r.try_get::<Option<String>, _>(0).ok().flatten()))
    }

    /// Replace the pinned key (the audited "accept new host key" action).
    pub async fn set_host_key(&self, id: &str, fingerprint: Option<&str>) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE servers SET host_key_fingerprint = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(fingerprint.map(str::to_string))
        .bind(remora_domain::time::now_ms())
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn set_server_status(&self, id: &str, status: &str) -> Result<()> {
        sqlx::query("UPDATE servers SET last_status = $1, last_checked_at = $2 WHERE id = $3")
            .bind(status)
            .bind(remora_domain::time::now_ms())
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn delete_server(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM servers WHERE id = $1")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    // ------------------------------------------------------------------- jobs

    pub async fn insert_job(&self, j: &Job) -> Result<()> {
        insert_job_query(j)
            .execute(&self.write)
            .await
            .map_err(map_unique)?;
        Ok(())
    }

    /// Insert several jobs (a batch) in one transaction: one commit instead
    /// of one per job, and all or none.
    pub async fn insert_jobs(&self, jobs: &[Job]) -> Result<()> {
        let mut tx = self.write.begin().await?;
        for j in jobs {
            insert_job_query(j)
                .execute(&mut *tx)
                .await
                .map_err(map_unique)?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_job(&self, id: &str) -> Result<Option<Job>> {
        let row = sqlx::query(&format!("SELECT {JOB_COLS} FROM jobs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// One page of jobs and the total count matching the filter.
    pub async fn list_jobs(&self, f: &JobFilter) -> Result<(Vec<Job>, i64)> {
        let p = self.list_jobs_page(f).await?;
        Ok((p.items, p.total))
    }

    /// One page of jobs, with a count capped at `f.count_cap`.
    pub async fn list_jobs_page(&self, f: &JobFilter) -> Result<Page<Job>> {
        let col = match f.sort_by.as_deref() {
            Some("started_at") => "started_at",
            Some("finished_at") => "finished_at",
            Some("priority") => "priority",
            Some("status") => "status",
            _ => "created_at",
        };
        // The filters; `+column` (SQLite) keeps a filter off its index, so
        // the page is read along the sort column's index instead.
        let filters = |plus: &str| {
            let mut conds: Vec<String> = Vec::new();
            let mut binds: Vec<String> = Vec::new();
            if let Some(s) = f.status {
                binds.push(s.as_str().to_string());
                conds.push(format!("{plus}status = ${}", binds.len()));
            }
            if let Some(s) = &f.server_id {
                binds.push(s.clone());
                conds.push(format!("{plus}server_id = ${}", binds.len()));
            }
            if let Some(b) = &f.batch_id {
                binds.push(b.clone());
                conds.push(format!("{plus}batch_id = ${}", binds.len()));
            }
            // Numbers are formatted into the SQL (they are i64, not text).
            if let Some(t) = f.created_after {
                conds.push(format!("{plus}created_at >= {t}"));
            }
            if let Some(t) = f.created_before {
                conds.push(format!("{plus}created_at < {t}"));
            }
            (conds, binds)
        };
        let (mut conds, mut binds) = filters("");
        let filtered = !conds.is_empty();
        // The count, when a query below already made it: the trigram index's
        // (a search alone) or the SQLite sort-path probe.
        let mut known_total = None;
        let mut search = None;
        if let Some(q) = f.search.as_deref().filter(|q| !q.is_empty()) {
            let (cond, total) = self.search_cond(q, binds.len() + 1, f.count_cap).await?;
            binds.push(cond.1);
            conds.push(cond.0.clone());
            search = Some(cond.0);
            if !filtered {
                known_total = total;
            }
        }
        let where_of = |conds: &[String]| {
            if conds.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conds.join(" AND "))
            }
        };
        let count_sql = |where_sql: &str, cap: i64| {
            if cap > 0 {
                format!("SELECT COUNT(*) FROM (SELECT 1 FROM jobs {where_sql} LIMIT {cap}) capped")
            } else {
                format!("SELECT COUNT(*) FROM jobs {where_sql}")
            }
        };
        let count = |sql: String| {
            let binds = &binds;
            async move {
                let mut q = sqlx::query(&sql);
                for b in binds {
                    q = q.bind(b.clone());
                }
                Ok::<i64, StoreError>(q.fetch_one(&self.read).await?.try_get(0)?)
            }
        };
        let mut where_sql = where_of(&conds);
        // SQLite reads a filtered list sorted by another column through the
        // filter's index and sorts every match: cheap for a few thousand
        // rows, hundreds of ms for a million. Counting first (the count is
        // needed anyway) tells which: many matches are read along the sort
        // column's index instead, where a page fills after a few rows.
        // PostgreSQL's planner makes that choice itself.
        if self.backend == Backend::Sqlite
            && filtered
            && matches!(col, "started_at" | "finished_at" | "priority")
        {
            let n = count(count_sql(&where_sql, self.probe_cap(f.count_cap))).await?;
            known_total = Some(capped(n, f.count_cap));
            if n >= self.dense_matches {
                let (mut along_sort, _) = filters("+");
                along_sort.extend(search.clone());
                where_sql = where_of(&along_sort);
            }
        }
        let dir = if f.ascending { "ASC" } else { "DESC" };
        let limit = f.limit.clamp(1, 1000);
        let offset = (f.page.max(1) - 1) * limit;
        // One row more than the page tells whether a next page exists.
        let sql = format!(
            "SELECT {JOB_COLS} FROM jobs {where_sql} ORDER BY {col} {dir}, id {dir} LIMIT {} OFFSET {offset}",
            limit + 1
        );
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b.clone());
        }
        let rows = q.fetch_all(&self.read).await?;
        let mut jobs = rows.iter().map(job_from_row).collect::<Result<Vec<_>>>()?;
        let has_next = jobs.len() as i64 > limit;
        jobs.truncate(limit as usize);
        // The last page, or an empty first one, is its own count: no second
        // pass over the matches (which, for a filter that matches little,
        // reads as many rows as the page did).
        if !has_next && (offset == 0 || !jobs.is_empty()) {
            return Ok(Page {
                total: offset + jobs.len() as i64,
                items: jobs,
                total_exact: true,
                has_next,
            });
        }
        let total: i64 = match known_total {
            Some(n) => n,
            None => count(count_sql(&where_sql, f.count_cap)).await?,
        };
        let total_exact = f.count_cap <= 0 || total < f.count_cap;
        // A page past the cap still counts what it has seen.
        let total = total.max(offset + jobs.len() as i64 + has_next as i64);
        Ok(Page {
            items: jobs,
            total,
            total_exact,
            has_next,
        })
    }

    /// How far a count that also decides the SQLite plan goes: to the
    /// list's cap, and at least to `dense_matches` (0 = uncapped).
    fn probe_cap(&self, count_cap: i64) -> i64 {
        if count_cap > 0 {
            count_cap.max(self.dense_matches)
        } else {
            0
        }
    }

    /// The WHERE condition for a free-text search (case-insensitive
    /// substring of a job's id, command or script) with its one bind value,
    /// numbered `$n`; and, when the trigram index counted them, the number of
    /// matching jobs up to `count_cap` (all of them when `count_cap` is 0).
    ///
    /// PostgreSQL: `LIKE '%…%'` on the expression that the pg_trgm GIN index
    /// (migration 0004) covers; the planner picks that index for rare strings
    /// and the list's B-tree index for common ones. Strings shorter than a
    /// trigram use STRPOS, which keeps the planner off that index.
    ///
    /// SQLite's planner cannot weigh the FTS5 trigram index, so the store
    /// counts first (the index answers that in ~1 ms per 10,000 matches):
    /// fewer than `dense_matches` matches are read from the index by id and
    /// sorted; a common string is matched with LIKE along the list's own
    /// index, where a page fills after a few hundred rows. Strings shorter
    /// than a trigram always use LIKE.
    async fn search_cond(
        &self,
        q: &str,
        n: usize,
        count_cap: i64,
    ) -> Result<((String, String), Option<i64>)> {
        let like = (
            format!("{SEARCH_TEXT} LIKE ${n} ESCAPE '\\'"),
            like_pattern(q),
        );
        let short = q.chars().count() < 3;
        if self.backend == Backend::Postgres {
            if short {
                // No trigram in the string: the GIN index would return every
                // row. STRPOS is not indexable, so the list's index is read.
                return Ok((
                    (format!("STRPOS({SEARCH_TEXT}, ${n}) > 0"), q.to_lowercase()),
                    None,
                ));
            }
            return Ok((like, None));
        }
        if short {
            return Ok((like, None));
        }
        // An FTS5 string: the trigram tokenizer turns it into the sequence
        // of its trigrams, which matches exactly where it is a substring.
        let phrase = format!("\"{}\"", q.replace('"', "\"\""));
        let probe = match self.probe_cap(count_cap) {
            0 => String::new(),
            cap => format!("LIMIT {cap}"),
        };
        let matches: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM jobs_fts WHERE jobs_fts MATCH $1 {probe}) m"
        ))
        .bind(&phrase)
        .fetch_one(&self.read)
        .await?
        .try_get(0)?;
        let total = Some(capped(matches, count_cap));
        if matches >= self.dense_matches {
            return Ok((like, total));
        }
        Ok((
            (
                format!("id IN (SELECT id FROM jobs_fts WHERE jobs_fts MATCH ${n})"),
                phrase,
            ),
            total,
        ))
    }

    /// Move a queued job to `running` for `worker_id`, unless its server is at
    /// `max_concurrency` (counted over all workers).
    pub async fn claim_job(&self, job_id: &str, worker_id: &str) -> Result<Claim> {
        if self.backend == Backend::Sqlite {
            return self.claim_job_sqlite(job_id, worker_id).await;
        }
        let mut tx = self.write.begin().await?;
        let job_row = sqlx::query("SELECT server_id, status FROM jobs WHERE id = $1")
            .bind(job_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(job_row) = job_row else {
            return Ok(Claim::NotQueued);
        };
        let server_id: String = job_row.try_get(0)?;
        let status: String = job_row.try_get(1)?;
        if status != "queued" {
            return Ok(Claim::NotQueued);
        }
        // Serialise claims per server so the running count cannot race. On
        // SQLite the single write connection already does.
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let max: Option<i64> = sqlx::query(&format!(
            "SELECT max_concurrency FROM servers WHERE id = $1{lock}"
        ))
        .bind(&server_id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
        if let Some(max) = max {
            let running: i64 = sqlx::query(
                "SELECT COUNT(*) FROM jobs WHERE server_id = $1 AND status = 'running'",
            )
            .bind(&server_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            if max > 0 && running >= max {
                return Ok(Claim::Busy);
            }
        }
        let now = remora_domain::time::now_ms();
        let r = sqlx::query(
            "UPDATE jobs SET status = 'running', worker_id = $1, started_at = $2, attempt = attempt + 1
             WHERE id = $3 AND status = 'queued'",
        )
        .bind(worker_id)
        .bind(now)
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(Claim::NotQueued);
        }
        let row = sqlx::query(&format!("SELECT {JOB_COLS} FROM jobs WHERE id = $1"))
            .bind(job_id)
            .fetch_one(&mut *tx)
            .await?;
        let job = job_from_row(&row)?;
        tx.commit().await?;
        Ok(Claim::Claimed(Box::new(job)))
    }

    /// `claim_job` on SQLite: one statement. Every write already goes
    /// through the single write connection, so the running count cannot
    /// race, and each statement there is a round trip to SQLite's thread:
    /// the seven statements of the transaction in `claim_job` made it the largest part
    /// of a short job's time on the writer.
    async fn claim_job_sqlite(&self, job_id: &str, worker_id: &str) -> Result<Claim> {
        let now = remora_domain::time::now_ms();
        let row = sqlx::query(&format!(
            "UPDATE jobs SET status = 'running', worker_id = $1, started_at = $2, attempt = attempt + 1
             WHERE id = $3 AND status = 'queued'
               AND (COALESCE((SELECT max_concurrency FROM servers WHERE id = jobs.server_id), 0) <= 0
                    OR (SELECT COUNT(*) FROM jobs r WHERE r.server_id = jobs.server_id AND r.status = 'running')
                       < (SELECT max_concurrency FROM servers WHERE id = jobs.server_id))
             RETURNING {JOB_COLS}"
        ))
        .bind(worker_id)
        .bind(now)
        .bind(job_id)
        .fetch_optional(&self.write)
        .await?;
        if let Some(row) = row {
            return Ok(Claim::Claimed(Box::new(job_from_row(&row)?)));
        }
        // Not claimed: queued still means its server is full.
        let status: Option<String> = sqlx::query("SELECT status FROM jobs WHERE id = $1")
            .bind(job_id)
            .fetch_optional(&self.write)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        Ok(match status.as_deref() {
            Some("queued") => Claim::Busy,
            _ => Claim::NotQueued,
        })
    }

    /// Put a running job back to `queued` (its command never started and a
    /// retry remains). Only the worker holding it may.
    pub async fn requeue_job(&self, job_id: &str, worker_id: &str, error: &str) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE jobs SET status = 'queued', worker_id = NULL, started_at = NULL, error = $1
             WHERE id = $2 AND status = 'running' AND worker_id = $3",
        )
        .bind(error)
        .bind(job_id)
        .bind(worker_id)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Record the final state of a running job. Exactly one final status
    /// wins: the update only applies while the job is still `running` on
    /// this worker. A pending cancel request turns the status into
    /// `canceled` unless the caller already decided `timed_out`.
    pub async fn finish_job(
        &self,
        job_id: &str,
        worker_id: &str,
        f: &Finish,
    ) -> Result<Option<JobStatus>> {
        let status = f.status.unwrap_or(JobStatus::Failed);
        let now = remora_domain::time::now_ms();
        let r = sqlx::query(
            "UPDATE jobs SET status = CASE WHEN cancel_requested = 1 AND $1 IN ('completed', 'failed') THEN 'canceled' ELSE $1 END,
                 exit_code = $2, exit_signal = $3, error = $4, error_code = $5, finished_at = $6
             WHERE id = $7 AND status = 'running' AND worker_id = $8",
        )
        .bind(status.as_str())
        .bind(f.exit_code)
        .bind(f.exit_signal.clone())
        .bind(f.error.clone())
        .bind(f.error_code.clone())
        .bind(now)
        .bind(job_id)
        .bind(worker_id)
        .execute(&self.write)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(None);
        }
        Ok(self.get_job(job_id).await?.map(|j| j.status))
    }

    /// End a job whatever worker holds it (the reaper, a cancel of a job
    /// whose worker is gone). Only applies to non-final jobs.
    pub async fn force_finish(
        &self,
        job_id: &str,
        status: JobStatus,
        error: &str,
        error_code: &str,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE jobs SET status = $1, error = $2, error_code = $3, finished_at = $4
             WHERE id = $5 AND status IN ('queued', 'running')",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(error_code)
        .bind(remora_domain::time::now_ms())
        .bind(job_id)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn request_cancel(&self, job_id: &str) -> Result<CancelOutcome> {
        let now = remora_domain::time::now_ms();
        let r = sqlx::query(
            "UPDATE jobs SET status = 'canceled', cancel_requested = 1, finished_at = $1, error = 'canceled before it started'
             WHERE id = $2 AND status = 'queued'",
        )
        .bind(now)
        .bind(job_id)
        .execute(&self.write)
        .await?;
        if r.rows_affected() == 1 {
            return Ok(CancelOutcome::CanceledQueued);
        }
        let r = sqlx::query(
            "UPDATE jobs SET cancel_requested = 1 WHERE id = $1 AND status = 'running'",
        )
        .bind(job_id)
        .execute(&self.write)
        .await?;
        if r.rows_affected() == 1 {
            return Ok(CancelOutcome::Requested);
        }
        match self.get_job(job_id).await? {
            Some(j) if j.status.is_final() => Ok(CancelOutcome::AlreadyFinal(j.status)),
            Some(_) => Ok(CancelOutcome::Requested),
            None => Ok(CancelOutcome::NotFound),
        }
    }

    pub async fn is_cancel_requested(&self, job_id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT cancel_requested FROM jobs WHERE id = $1")
            .bind(job_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<i64, _>(0)? != 0,
            None => false,
        })
    }

    /// Append output chunks and update the job's byte counters, atomically.
    pub async fn append_output(
        &self,
        job_id: &str,
        chunks: &[OutputChunk],
        stdout_bytes: i64,
        stderr_bytes: i64,
        truncated: bool,
    ) -> Result<()> {
        let now = remora_domain::time::now_ms();
        let mut tx = self.write.begin().await?;
        for c in chunks {
            sqlx::query("INSERT INTO job_output (job_id, seq, stream, data, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(job_id)
                .bind(c.seq)
                .bind(c.stream.code())
                .bind(c.data.clone())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_unique)?;
        }
        sqlx::query(
            "UPDATE jobs SET stdout_bytes = $1, stderr_bytes = $2, truncated = $3 WHERE id = $4",
        )
        .bind(stdout_bytes)
        .bind(stderr_bytes)
        .bind(truncated as i64)
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The stored chunks of a job in order, optionally after `after_seq`.
    pub async fn output_chunks(&self, job_id: &str, after_seq: i64) -> Result<Vec<OutputChunk>> {
        let rows = sqlx::query(
            "SELECT seq, stream, data FROM job_output WHERE job_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(job_id)
        .bind(after_seq)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let code: i64 = r.try_get(1)?;
                Ok(OutputChunk {
                    seq: r.try_get(0)?,
                    stream: Stream::from_code(code)
                        .ok_or_else(|| StoreError::Corrupt(format!("stream {code}")))?,
                    data: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// The full stored stdout and stderr of a job, bytes-exact.
    pub async fn job_output(&self, job_id: &str) -> Result<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        let mut err = Vec::new();
        for c in self.output_chunks(job_id, -1).await? {
            match c.stream {
                Stream::Stdout => out.extend_from_slice(&c.data),
                Stream::Stderr => err.extend_from_slice(&c.data),
            }
        }
        Ok((out, err))
    }

    /// Jobs the database holds as `queued`, for re-pushing to the queue.
    pub async fn queued_jobs(&self, limit: i64) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query(&format!(
            "SELECT id, server_id, priority FROM jobs WHERE status = 'queued' ORDER BY created_at LIMIT {}",
            limit.max(1)
        ))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    pub async fn count_jobs_by_status(&self) -> Result<Vec<(JobStatus, i64)>> {
        let rows = sqlx::query("SELECT status, COUNT(*) FROM jobs GROUP BY status")
            .fetch_all(&self.read)
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let s: String = r.try_get(0)?;
            let n: i64 = r.try_get(1)?;
            if let Ok(st) = s.parse() {
                out.push((st, n));
            }
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- workers

    pub async fn register_worker(&self, w: &WorkerRow) -> Result<()> {
        // A worker that (re)starts holds no job yet: whatever its id still has `running` belonged
        // to an earlier process with that id which died (kill -9, crash, reboot) before the reaper
        // saw it go down; once the new row says `up`, the reaper never would.
        let msg = format!(
            "worker {} restarted while running this job; its remote processes are killed by the job wrapper when the SSH session drops",
            w.id
        );
        sqlx::query(
            "UPDATE jobs SET status = 'failed', error = $1, error_code = 'worker_lost', finished_at = $2
             WHERE worker_id = $3 AND status = 'running'",
        )
        .bind(&msg)
        .bind(remora_domain::time::now_ms())
        .bind(&w.id)
        .execute(&self.write)
        .await?;
        sqlx::query("DELETE FROM workers WHERE id = $1")
            .bind(&w.id)
            .execute(&self.write)
            .await?;
        sqlx::query(
            "INSERT INTO workers (id, hostname, version, concurrency, running, started_at, last_heartbeat_at, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&w.id)
        .bind(&w.hostname)
        .bind(&w.version)
        .bind(w.concurrency)
        .bind(w.running)
        .bind(w.started_at)
        .bind(w.last_heartbeat_at)
        .bind(&w.status)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn heartbeat_worker(&self, id: &str, running: i64, status: &str) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE workers SET last_heartbeat_at = $1, running = $2, status = $3 WHERE id = $4",
        )
        .bind(remora_domain::time::now_ms())
        .bind(running)
        .bind(status)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn list_workers(&self) -> Result<Vec<WorkerRow>> {
        let rows = sqlx::query("SELECT id, hostname, version, concurrency, running, started_at, last_heartbeat_at, status FROM workers ORDER BY started_at DESC")
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(worker_from_row).collect()
    }

    /// Mark workers whose last heartbeat is older than `cutoff_ms` as down and
    /// return their ids.
    pub async fn mark_stale_workers(&self, cutoff_ms: i64) -> Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT id FROM workers WHERE status <> 'down' AND last_heartbeat_at < $1")
                .bind(cutoff_ms)
                .fetch_all(&self.read)
                .await?;
        let mut ids = Vec::new();
        for r in rows {
            let id: String = r.try_get(0)?;
            let u = sqlx::query("UPDATE workers SET status = 'down' WHERE id = $1 AND status <> 'down' AND last_heartbeat_at < $2")
                .bind(&id)
                .bind(cutoff_ms)
                .execute(&self.write)
                .await?;
            if u.rows_affected() == 1 {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Running jobs held by a worker that is not `up` (down or unknown).
    pub async fn orphaned_jobs(&self) -> Result<Vec<(String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT j.id, j.worker_id FROM jobs j LEFT JOIN workers w ON w.id = j.worker_id
             WHERE j.status = 'running' AND (w.id IS NULL OR w.status = 'down')",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    // ----------------------------------------------------------------- tokens

    pub async fn insert_token(&self, name: &str, token_hash: &str, role: &str) -> Result<String> {
        let id = remora_domain::new_id();
        sqlx::query("INSERT INTO api_tokens (id, name, token_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(name)
            .bind(token_hash)
            .bind(role)
            .bind(remora_domain::time::now_ms())
            .execute(&self.write)
            .await
            .map_err(map_unique)?;
        Ok(id)
    }

    /// The (id, role) of a live token with this hash.
    pub async fn find_token(&self, token_hash: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query(
            "SELECT id, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }
    // ------------------------------------------------------------- secrets

    /// Decrypt a server's credentials (its own key, or its uploaded PEM file).
    pub async fn open_secrets(
        &self,
        server_id: &str,
        vault: &Vault,
    ) -> Result<Option<PlainSecrets>> {
        let Some(sec) = self.server_secrets(server_id).await? else {
            return Ok(None);
        };
        let open = |v: &Option<Vec<u8>>| -> Result<Option<String>> {
            v.as_ref()
                .map(|b| vault.open_string(b))
                .transpose()
                .map_err(|e| {
                    StoreError::Corrupt(format!("cannot decrypt the server's credentials: {e}"))
                })
        };
        let pem_pass = match &sec.pem_file_enc {
            Some(_) => {
                let row = sqlx::query("SELECT p.passphrase_enc FROM servers s JOIN pem_files p ON p.id = s.pem_file_id WHERE s.id = $1")
                    .bind(server_id)
                    .fetch_optional(&self.read)
                    .await?;
                row.and_then(|r| r.try_get::<Option<Vec<u8>>, _>(0).ok().flatten())
            }
            None => None,
        };
        let own_key = open(&sec.private_key_enc)?;
        let (private_key, passphrase) = match own_key {
            Some(k) => (Some(k), open(&sec.passphrase_enc)?),
            None => (
                open(&sec.pem_file_enc)?,
                match open(&sec.passphrase_enc)? {
                    Some(p) => Some(p),
                    None => open(&pem_pass)?,
                },
            ),
        };
        Ok(Some(PlainSecrets {
            password: open(&sec.password_enc)?,
            private_key,
            passphrase,
        }))
    }

    // ------------------------------------------------------------- pem files

    pub async fn insert_pem(
        &self,
        key_type: &str,
        fingerprint: &str,
        content_enc: &[u8],
        passphrase_enc: Option<Vec<u8>>,
        size: i64,
    ) -> Result<PemFile> {
        let id = remora_domain::new_id();
        let now = remora_domain::time::now_ms();
        sqlx::query("INSERT INTO pem_files (id, key_type, fingerprint, content_enc, passphrase_enc, size, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&id)
            .bind(key_type)
            .bind(fingerprint)
            .bind(content_enc.to_vec())
            .bind(passphrase_enc)
            .bind(size)
            .bind(now)
            .execute(&self.write)
            .await?;
        Ok(PemFile {
            id,
            key_type: key_type.into(),
            fingerprint: fingerprint.into(),
            size,
            created_at: now,
        })
    }

    pub async fn list_pems(&self) -> Result<Vec<PemFile>> {
        let rows = sqlx::query("SELECT id, key_type, fingerprint, size, created_at FROM pem_files ORDER BY created_at DESC")
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(pem_from_row).collect()
    }

    pub async fn get_pem(&self, id: &str) -> Result<Option<PemFile>> {
        let row = sqlx::query(
            "SELECT id, key_type, fingerprint, size, created_at FROM pem_files WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(pem_from_row).transpose()
    }

    /// Servers that use a PEM file (it cannot be deleted while any does).
    pub async fn pem_users(&self, id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM servers WHERE pem_file_id = $1 ORDER BY name")
            .bind(id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    pub async fn delete_pem(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM pem_files WHERE id = $1")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    // ------------------------------------------------------------- tokens, audit

    pub async fn list_tokens(&self) -> Result<Vec<TokenRow>> {
        let rows = sqlx::query(
            "SELECT id, name, role, created_at, revoked_at FROM api_tokens ORDER BY created_at",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenRow {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    role: r.try_get(2)?,
                    created_at: r.try_get(3)?,
                    revoked_at: r.try_get(4)?,
                })
            })
            .collect()
    }

    pub async fn revoke_token(&self, id: &str) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(remora_domain::time::now_ms())
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn audit(
        &self,
        token_id: Option<&str>,
        action: &str,
        object_type: &str,
        object_id: Option<&str>,
        detail: Option<&str>,
    ) -> Result<()> {
        sqlx::query("INSERT INTO audit_log (id, token_id, action, object_type, object_id, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(remora_domain::new_id())
            .bind(token_id.map(str::to_string))
            .bind(action)
            .bind(object_type)
            .bind(object_id.map(str::to_string))
            .bind(detail.map(str::to_string))
            .bind(remora_domain::time::now_ms())
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn list_audit(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(&format!(
            "SELECT id, token_id, action, object_type, object_id, detail, created_at FROM audit_log ORDER BY created_at DESC, id DESC LIMIT {}",
            limit.clamp(1, 1000)
        ))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get(0)?,
                    token_id: r.try_get(1)?,
                    action: r.try_get(2)?,
                    object_type: r.try_get(3)?,
                    object_id: r.try_get(4)?,
                    detail: r.try_get(5)?,
                    created_at: r.try_get(6)?,
                })
            })
            .collect()
    }

    // ------------------------------------------------------------- statistics

    /// Finished jobs per minute since `since_ms`.
    pub async fn throughput(&self, since_ms: i64) -> Result<Vec<MinuteCount>> {
        let rows = sqlx::query(
            "SELECT (finished_at / 60000) * 60000 AS minute,
                    SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) AS completed,
                    SUM(CASE WHEN status IN ('failed', 'timed_out') THEN 1 ELSE 0 END) AS failed,
                    SUM(CASE WHEN status = 'canceled' THEN 1 ELSE 0 END) AS canceled,
                    COUNT(*) AS total
             FROM jobs WHERE finished_at IS NOT NULL AND finished_at >= $1
             GROUP BY (finished_at / 60000) * 60000 ORDER BY minute",
        )
        .bind(since_ms)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MinuteCount {
                    minute: r.try_get(0)?,
                    completed: r.try_get(1)?,
                    failed: r.try_get(2)?,
                    canceled: r.try_get(3)?,
                    total: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Jobs that finished in `[from_ms, to_ms)`, oldest first, `limit` after `after_id`
    /// (keyset pagination for exports).
    pub async fn finished_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<Job>> {
        let (cond, a_ms, a_id) = match after {
            Some((ms, id)) => (
                "AND (finished_at > $3 OR (finished_at = $3 AND id > $4))",
                ms,
                id,
            ),
            None => ("AND $3 = $3 AND $4 = $4", 0, String::new()),
        };
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLS} FROM jobs WHERE finished_at >= $1 AND finished_at < $2 {cond} ORDER BY finished_at, id LIMIT {}",
            limit.clamp(1, 10_000)
        ))
        .bind(from_ms)
        .bind(to_ms)
        .bind(a_ms)
        .bind(a_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(job_from_row).collect()
    }
    /// Benchmarks only: fill `jobs` with `n` finished jobs spread over two
    /// servers and the statuses, in one statement per backend.
    pub async fn bench_fill_jobs(
        &self,
        n: i64,
        server_a: &str,
        server_b: &str,
        analyze_sqlite: bool,
    ) -> Result<()> {
        let series = match self.backend {
            Backend::Sqlite => "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $1) SELECT x FROM c",
            Backend::Postgres => "SELECT generate_series(1, $1) AS x",
        };
        let sql = format!(
            "INSERT INTO jobs (id, kind, command, args, server_id, status, priority, timeout_secs, attempt, max_retries, cancel_requested, created_at, started_at, finished_at, exit_code, stdout_bytes, stderr_bytes, truncated)
             SELECT 'bench-' || CAST(x AS TEXT), 'command', CASE WHEN x % 10 = 0 THEN 'deploy app ' || CAST(x AS TEXT) ELSE 'echo ' || CAST(x AS TEXT) END, '[]',
                    CASE WHEN x % 4 = 0 THEN $2 ELSE $3 END,
                    CASE x % 5 WHEN 0 THEN 'failed' WHEN 1 THEN 'canceled' ELSE 'completed' END,
                    5, 0, 1, 0, 0, 1700000000000 + x * 1000, 1700000000000 + x * 1000, 1700000000500 + x * 1000, 0, 10, 0, 0
             FROM ({series}) s"
        );
        sqlx::query(&sql)
            .bind(n)
            .bind(server_a)
            .bind(server_b)
            .execute(&self.write)
            .await?;
        // As autovacuum would have done on PostgreSQL. SQLite gathers no
        // statistics by itself: measured as a real database would be, unless
        // `analyze_sqlite`.
        if self.backend == Backend::Postgres {
            sqlx::query("ANALYZE jobs").execute(&self.write).await?;
        } else if analyze_sqlite {
            sqlx::query("ANALYZE").execute(&self.write).await?;
        }
        Ok(())
    }
    /// Re-encrypt every sealed secret (server passwords, keys, passphrases,
    /// uploaded key files) from `old` (which may know previous keys) to
    /// `new`, in one transaction. Returns how many values were rewritten.
    pub async fn rekey(&self, old: &Vault, new: &Vault) -> Result<usize> {
        let mut tx = self.write.begin().await?;
        let mut n = 0;
        for (table, cols) in [
            (
                "servers",
                ["password_enc", "private_key_enc", "passphrase_enc"],
            ),
            (
                "pem_files",
                ["content_enc", "passphrase_enc", "passphrase_enc"],
            ),
        ] {
            for col in cols.iter().collect::<std::collections::BTreeSet<_>>() {
                let rows = sqlx::query(&format!(
                    "SELECT id, {col} FROM {table} WHERE {col} IS NOT NULL"
                ))
                .fetch_all(&mut *tx)
                .await?;
                for r in rows {
                    let id: String = r.try_get(0)?;
                    let sealed: Vec<u8> = r.try_get(1)?;
                    let plain = old
                        .open(&sealed)
                        .map_err(|e| StoreError::Corrupt(format!("{table}.{col} of {id}: {e}")))?;
                    sqlx::query(&format!("UPDATE {table} SET {col} = $1 WHERE id = $2"))
                        .bind(new.seal(&plain))
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                    n += 1;
                }
            }
        }
        tx.commit().await?;
        Ok(n)
    }
}
