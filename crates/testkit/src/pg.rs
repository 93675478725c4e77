//! Throwaway PostgreSQL databases on the server named by `REMORA_TEST_PG_URL` (set by
//! `scripts/with-postgres.sh`), created and dropped with the `psql` client binary.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Environment variable holding an admin URL, e.g. `postgres://postgres@127.0.0.1:55432/postgres`.
pub const URL_ENV: &str = "REMORA_TEST_PG_URL";

/// A fresh, uniquely named database; dropped (`WITH (FORCE)`, so open pools do not block it) on
/// drop.
#[derive(Debug)]
pub struct PgDb {
    /// Connection URL of the new database.
    pub url: String,
    name: String,
    admin_url: String,
}

impl PgDb {
    /// The database name, `remora_t_<pid>x<n>_<random>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs SQL through `psql` against this database (stops at the first error) and returns
    /// stdout (unaligned, tuples only).
    pub fn psql(&self, sql: &str) -> Result<String> {
        psql(&self.url, sql)
    }

    /// Runs SQL through `psql` against the server's admin database (for what cannot run from
    /// inside this database, e.g. `ALTER DATABASE … ALLOW_CONNECTIONS true` after an outage).
    pub fn admin_psql(&self, sql: &str) -> Result<String> {
        psql(&self.admin_url, sql)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        if let Err(e) = psql(&self.admin_url, &sql) {
            eprintln!("remora-testkit: dropping database {}: {e:#}", self.name);
        }
    }
}

/// A fresh database on the `REMORA_TEST_PG_URL` server.
///
/// Unset variable: `Ok(None)` so the test can print "skipped" and return, or a panic under
/// `CI=true`. A set variable with an unreachable server is an error, never a skip.
pub fn database() -> Result<Option<PgDb>> {
    let Ok(admin_url) = std::env::var(URL_ENV) else {
        if crate::in_ci() {
            panic!("{URL_ENV} is not set under CI=true: run tests via `make test` / scripts/with-postgres.sh");
        }
        return Ok(None);
    };
    let name = format!(
        "remora_t_{}_{}",
        crate::unique_suffix(),
        crate::random_alnum(6)?
    );
    // Concurrent CREATE DATABASE from template1 can fail while another session is copying it;
    // that is transient, so retry briefly.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match psql(&admin_url, &format!("CREATE DATABASE \"{name}\"")) {
            Ok(_) => break,
            Err(e)
                if format!("{e:#}").contains("being accessed by other users")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e.context(format!("creating database {name} via {URL_ENV}"))),
        }
    }
    Ok(Some(PgDb {
        url: with_database(&admin_url, &name),
        name,
        admin_url,
    }))
}

/// Like [`database`] but a missing URL is an error starting with `SKIP:`, for
/// `require!(pg::database_or_skip())`.
pub fn database_or_skip() -> Result<PgDb> {
    match database()? {
        Some(db) => Ok(db),
        None => crate::skip(format!(
            "{URL_ENV} not set (run via scripts/with-postgres.sh)"
        )),
    }
}

/// Replaces the database path of a `postgres://` URL, keeping user, host, port and parameters.
fn with_database(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (authority_and_path, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let authority = authority_and_path
        .split_once('/')
        .map_or(authority_and_path, |(a, _)| a);
    match query {
        Some(q) => format!("{scheme}://{authority}/{db}?{q}"),
        None => format!("{scheme}://{authority}/{db}"),
    }
}

fn psql(url: &str, sql: &str) -> Result<String> {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .output()
        .context("running psql (install postgresql-client)")?;
    if !out.status.success() {
        bail!(
            "psql failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_only_the_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:55432/postgres", "x"),
            "postgres://postgres@127.0.0.1:55432/x"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
        assert_eq!(
            with_database("postgres://h:1?a=b", "x"),
            "postgres://h:1/x?a=b"
        );
    }
}
