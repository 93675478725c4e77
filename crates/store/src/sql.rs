//! One SQL text, two ways to run it: the statements of the group-commit writer's operations
//! (claim, output, final status, submission, and the batch stop a final status may cause) are
//! written once against [`Conn`], which is either a `sqlx::Any` connection (PostgreSQL, and
//! SQLite's in-memory databases) or the writer's own `rusqlite` connection to an SQLite file.
//!
//! # Why the writer has its own SQLite connection
//! Every statement on a sqlx SQLite connection is a round trip between the calling task and the
//! connection's thread (a wake-up each way); a job's claim, output and final status made about a
//! dozen of them, and on two busy cores each wake-up waits for a core. The writer's thread runs a
//! whole round on its connection synchronously: one wake-up for the round. Only one SQLite
//! connection may write at a time, so the writer takes the store's sqlx write connection out of
//! its pool for the length of a round (unused, as a lock: `writer::Gate`): the other writes of
//! the store queue for that pool as they always did, in turn with the rounds, and none of them
//! waits in SQLite's busy handler for the writer or the writer for them.
//!
//! # Placeholders
//! `$1`, `$2`, … as everywhere in the store. SQLite reads `$N` as a *named* parameter, numbered
//! in order of first appearance; [`bind_lite`] binds each by the number in its name, as
//! sqlx-sqlite does, so `$4` used twice is one value and `$3` before `$1` is still the third.

use crate::{sqlite_constraint, Result, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row as _;

/// A bound value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Blob(&'a [u8]),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Arg::Text(Some(s))
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(s: &'a String) -> Self {
        Arg::Text(Some(s))
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(s: Option<&'a str>) -> Self {
        Arg::Text(s)
    }
}
impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(s: &'a Option<String>) -> Self {
        Arg::Text(s.as_deref())
    }
}
impl From<i64> for Arg<'_> {
    fn from(n: i64) -> Self {
        Arg::Int(Some(n))
    }
}
impl From<Option<i64>> for Arg<'_> {
    fn from(n: Option<i64>) -> Self {
        Arg::Int(n)
    }
}
impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(b: &'a [u8]) -> Self {
        Arg::Blob(b)
    }
}

/// A type a column is read as, through either connection.
pub(crate) trait Col:
    Sized + rusqlite::types::FromSql + for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>
{
}
impl<T> Col for T where
    T: Sized
        + rusqlite::types::FromSql
        + for<'r> sqlx::Decode<'r, sqlx::Any>
        + sqlx::Type<sqlx::Any>
{
}

/// A column by name or position, for either connection.
pub(crate) trait ColIdx: sqlx::ColumnIndex<AnyRow> + rusqlite::RowIndex + Copy {}
impl ColIdx for &str {}
impl ColIdx for usize {}

/// A result row of either connection.
pub(crate) enum Row<'r, 's> {
    Any(&'r AnyRow),
    Lite(&'r rusqlite::Row<'s>),
}

impl Row<'_, '_> {
    pub(crate) fn get<T: Col>(&self, col: impl ColIdx) -> Result<T> {
        match self {
            Row::Any(r) => Ok(r.try_get(col)?),
            Row::Lite(r) => r.get(col).map_err(lite_err),
        }
    }
}

/// The connection an operation runs on, inside the caller's transaction.
pub(crate) enum Conn<'c> {
    Any(&'c mut sqlx::AnyConnection),
    Lite(&'c mut rusqlite::Connection),
}

fn any_query<'q>(
    sql: &'q str,
    args: &[Arg<'q>],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut q = sqlx::query(sql);
    for a in args {
        q = match *a {
            Arg::Text(s) => q.bind(s),
            Arg::Int(n) => q.bind(n),
            Arg::Blob(b) => q.bind(b),
        };
    }
    q
}

/// Bind `args` to `stmt` by the number in each parameter's name (`$N` is `args[N - 1]`).
fn bind_lite(stmt: &mut rusqlite::Statement<'_>, args: &[Arg<'_>]) -> Result<()> {
    for idx in 1..=stmt.parameter_count() {
        let n = stmt
            .parameter_name(idx)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=args.len()).contains(n))
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "statement parameter {idx} is not one of $1..${}",
                    args.len()
                ))
            })?;
        let r = match args[n - 1] {
            Arg::Text(s) => stmt.raw_bind_parameter(idx, s),
            Arg::Int(v) => stmt.raw_bind_parameter(idx, v),
            Arg::Blob(b) => stmt.raw_bind_parameter(idx, b),
        };
        r.map_err(lite_err)?;
    }
    Ok(())
}

/// A rusqlite error as the store's: a unique index's refusal is a `Conflict` named as
/// PostgreSQL names the constraint, as `map_unique` does for sqlx.
pub(crate) fn lite_err(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        let code = f.extended_code;
        // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
        if code == 2067 || code == 1555 {
            let msg = msg.as_deref().unwrap_or("");
            return StoreError::Conflict {
                constraint: sqlite_constraint(msg, code == 1555),
            };
        }
    }
    StoreError::Sqlite(e)
}

impl Conn<'_> {
    /// Run a statement; the number of rows it changed.
    pub(crate) async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        match self {
            Conn::Any(c) => Ok(any_query(sql, args)
                .execute(&mut **c)
                .await
                .map_err(crate::map_unique)?
                .rows_affected()),
            Conn::Lite(c) => {
                let mut stmt = c.prepare_cached(sql).map_err(lite_err)?;
                bind_lite(&mut stmt, args)?;
                Ok(stmt.raw_execute().map_err(lite_err)? as u64)
            }
        }
    }

    /// Run a statement and map each row it returns.
    pub(crate) async fn fetch_all<T>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl Fn(&Row<'_, '_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        match self {
            Conn::Any(c) => any_query(sql, args)
                .fetch_all(&mut **c)
                .await
                .map_err(crate::map_unique)?
                .iter()
                .map(|r| f(&Row::Any(r)))
                .collect(),
            Conn::Lite(c) => {
                let mut stmt = c.prepare_cached(sql).map_err(lite_err)?;
                bind_lite(&mut stmt, args)?;
                let mut rows = stmt.raw_query();
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(lite_err)? {
                    out.push(f(&Row::Lite(r))?);
                }
                Ok(out)
            }
        }
    }

    /// Run a statement and map the first row it returns, if any. (A statement that changes
    /// rows, `UPDATE … RETURNING`, changes all of them whatever is read.)
    pub(crate) async fn fetch_optional<T>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl Fn(&Row<'_, '_>) -> Result<T>,
    ) -> Result<Option<T>> {
        match self {
            Conn::Any(c) => any_query(sql, args)
                .fetch_optional(&mut **c)
                .await
                .map_err(crate::map_unique)?
                .map(|r| f(&Row::Any(&r)))
                .transpose(),
            Conn::Lite(c) => {
                let mut stmt = c.prepare_cached(sql).map_err(lite_err)?;
                bind_lite(&mut stmt, args)?;
                let mut rows = stmt.raw_query();
                let first = match rows.next().map_err(lite_err)? {
                    Some(r) => Some(f(&Row::Lite(r))?),
                    None => None,
                };
                // Step a RETURNING statement to its end, as sqlx does.
                while rows.next().map_err(lite_err)?.is_some() {}
                Ok(first)
            }
        }
    }

    /// `fetch_optional` of one column.
    pub(crate) async fn fetch_value<T: Col>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>> {
        self.fetch_optional(sql, args, |r| r.get(0usize)).await
    }
}

/// Open the writer's connection to the SQLite file `path`, with the settings every connection
/// of the store has (`Store::connect_with`).
pub(crate) fn open_lite(path: &str) -> Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(lite_err)?;
    conn.execute_batch(crate::SQLITE_PRAGMAS)
        .map_err(lite_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Run a future that never waits (one of `Conn::Lite`'s) to its end on this thread.
pub(crate) fn run_now<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}
