//! Job lists: filters, sorting, free-text search and capped counts, tuned per backend.

use super::{job_from_row, JOB_COLS};
use crate::{Backend, Result, Store, StoreError};
use remora_domain::{Job, JobStatus};
use sqlx::Row;

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

pub(crate) fn like_pattern(s: &str) -> String {
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

impl Store {
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
        // Saturating: a huge page reads past the end instead of overflowing.
        let offset = (f.page.max(1) - 1).saturating_mul(limit);
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
        // Jobs not yet moved into the index (migration 0020) are matched on their text; the
        // backlog is what was submitted since the indexer's last pass.
        let backlog = |p: &str| {
            format!(
                "SELECT id FROM jobs WHERE id IN (SELECT id FROM jobs_fts_backlog) \
                 AND INSTR({SEARCH_TEXT}, LOWER(REPLACE(SUBSTR({p}, 2, LENGTH({p}) - 2), '\"\"', '\"'))) > 0"
            )
        };
        let row = sqlx::query(&format!(
            "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM jobs_fts WHERE jobs_fts MATCH $1 {probe}) m),
                    (SELECT COUNT(*) FROM ({}) b)",
            backlog("$1")
        ))
        .bind(&phrase)
        .fetch_one(&self.read)
        .await?;
        let matches: i64 = row.try_get::<i64, _>(0)? + row.try_get::<i64, _>(1)?;
        let total = Some(capped(matches, count_cap));
        if matches >= self.dense_matches {
            return Ok((like, total));
        }
        let p = format!("${n}");
        Ok((
            (
                format!(
                    "(id IN (SELECT id FROM jobs_fts WHERE jobs_fts MATCH {p}) OR id IN ({}))",
                    backlog(&p)
                ),
                phrase,
            ),
            total,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::{capped, like_pattern};

    #[test]
    fn like_pattern_lowercases_and_escapes_wildcards() {
        assert_eq!(like_pattern("Echo"), "%echo%");
        assert_eq!(like_pattern("100%_a\\b"), "%100\\%\\_a\\\\b%");
    }

    #[test]
    fn capped_stops_at_the_cap_unless_zero() {
        assert_eq!(capped(7, 5), 5);
        assert_eq!(capped(3, 5), 3);
        assert_eq!(capped(7, 0), 7);
    }
}
