//! `/batches`: a multi-server submission's status, counts and ETA, its output
//! grouped by identical (stdout, stderr, exit code), export, cancel and rerun.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::jobs::{batch_jobs, copy_job, CreateJob, DuplicateBody};
use crate::openapi::{BatchCell, BatchCreated, BatchView};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use remora_domain::batch::{self, BatchStatus, Limit, OnFail};
use remora_domain::{Job, JobStatus};
use remora_store::{BatchRow, CellFilter};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_batch))
        .routes(routes!(cancel_batch))
        .routes(routes!(rerun_batch))
        .routes(routes!(groups))
        .routes(routes!(export_batch))
}

/// A host count (`5`) or a share of the targets (`"10%"`).
#[derive(Deserialize, Debug, Clone, ToSchema)]
#[serde(untagged)]
pub enum PolicyLimit {
    Count(u64),
    Text(String),
}

impl PolicyLimit {
    fn limit(&self, field: &str) -> ApiResult<Limit> {
        match self {
            PolicyLimit::Count(0) => Err(ApiError::invalid(
                field,
                format!("{field} must be at least 1"),
            )),
            PolicyLimit::Count(n) => Ok(Limit::Count(*n)),
            PolicyLimit::Text(s) => Limit::parse(s).map_err(|e| ApiError::invalid(field, e)),
        }
    }
}

/// The batch row of a new batch of `total` hosts from the submission's policy fields.
pub(crate) fn policy_row(
    b: &CreateJob,
    id: &str,
    total: usize,
    source: Option<String>,
) -> ApiResult<BatchRow> {
    let total_u = total as u64;
    let max_parallel = match &b.max_parallel {
        Some(l) => l.limit("max_parallel")?.resolve(total_u) as i64,
        None => 0,
    };
    let fail_threshold = match &b.fail_threshold {
        Some(l) => l.limit("fail_threshold")?.resolve(total_u) as i64,
        None => 0,
    };
    Ok(BatchRow {
        id: id.to_string(),
        total: total as i64,
        max_parallel,
        fail_threshold,
        on_fail: b.on_fail_threshold.unwrap_or_default(),
        state: BatchStatus::Running,
        source_batch_id: source,
        created_at: remora_domain::time::now_ms(),
        stopped_at: None,
    })
}

/// A single-server submission takes no batch policy.
pub(crate) fn refuse_policy(b: &CreateJob) -> ApiResult<()> {
    for (set, field) in [
        (b.max_parallel.is_some(), "max_parallel"),
        (b.fail_threshold.is_some(), "fail_threshold"),
        (b.on_fail_threshold.is_some(), "on_fail_threshold"),
    ] {
        if set {
            return Err(ApiError::invalid(
                field,
                format!(
                    "`{field}` applies to a batch (`server_ids` or `tag`), not to one `server_id`"
                ),
            ));
        }
    }
    Ok(())
}

/// Hosts (with their output) read per store round trip by groups and export.
const OUTPUT_PAGE: i64 = 500;

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BatchQuery {
    /// `false` leaves out the full `jobs` list (the grid in `servers` stays): what a dashboard polls.
    pub jobs: Option<bool>,
    /// Only hosts in this job status in `servers`.
    pub status: Option<String>,
    /// Only hosts whose name or id contains this (case-insensitive) in `servers`.
    pub search: Option<String>,
    /// Skip this many of the matching hosts (default 0).
    pub offset: Option<usize>,
    /// At most this many hosts in `servers` (default: all of them).
    pub limit: Option<usize>,
}

/// A batch: its status, policy, counts by status, progress, ETA and per-server grid
/// (filtered by `status` / `search` and paged by `offset` / `limit`).
#[utoipa::path(get, path = "/batches/{id}", tag = "batches", params(("id" = String, Path, description = "Batch id"), BatchQuery), responses((status = 200, body = BatchView), (status = 404, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn get_batch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<BatchQuery>,
) -> ApiResult<Json<BatchView>> {
    Ok(Json(view(&state, id, &q).await?))
}

fn exit_key(code: Option<i64>) -> String {
    code.map(|c| c.to_string()).unwrap_or_else(|| "none".into())
}

fn parse_status(s: Option<&str>) -> ApiResult<Option<JobStatus>> {
    match s {
        Some(s) if !s.is_empty() => s
            .parse::<JobStatus>()
            .map(Some)
            .map_err(|_| ApiError::invalid("status", format!("unknown job status `{s}`"))),
        _ => Ok(None),
    }
}

/// Counts, histogram and the grid page come from SQL (GROUP BY, LIMIT/OFFSET):
/// no job is loaded unless `jobs` asks for the full list.
async fn view(state: &AppState, id: String, q: &BatchQuery) -> ApiResult<BatchView> {
    let want = parse_status(q.status.as_deref())?;
    let tally = state.store.batch_tally(&id).await?;
    let c = tally.counts;
    if c.total() == 0 {
        return Err(ApiError::not_found("batch", &id));
    }
    let jobs = if q.jobs.unwrap_or(true) {
        batch_jobs(state, &id).await?
    } else {
        Vec::new()
    };
    let row = state.store.get_batch(&id).await?;
    let to_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let (servers_total, cells) = state
        .store
        .batch_cells(
            &id,
            &CellFilter {
                status: want,
                search: q.search.clone(),
                offset: to_i64(q.offset.unwrap_or(0)),
                limit: q.limit.map(to_i64).unwrap_or(c.total() as i64),
            },
        )
        .await?;
    let servers = cells
        .into_iter()
        .map(|r| BatchCell {
            server_id: r.server_id,
            server_name: r.server_name,
            job_id: r.job_id,
            status: r.status,
            exit_code: r.exit_code,
            error: r.error,
        })
        .collect();
    let mut summary: BTreeMap<String, i64> = JobStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    for (s, n) in [
        (JobStatus::Queued, c.queued),
        (JobStatus::Running, c.running),
        (JobStatus::Completed, c.completed),
        (JobStatus::Failed, c.failed),
        (JobStatus::Canceled, c.canceled),
        (JobStatus::TimedOut, c.timed_out),
    ] {
        summary.insert(s.as_str().to_string(), n as i64);
    }
    let exit_codes = tally
        .exit_codes
        .iter()
        .map(|(k, n)| (exit_key(*k), *n as usize))
        .collect();
    let finished = c.queued + c.running == 0;
    let state_now = row
        .as_ref()
        .map(|r| r.state)
        .unwrap_or(BatchStatus::Running);
    let status = batch::status(state_now, &c);
    let started = row
        .as_ref()
        .map(|r| r.created_at)
        .or(tally.first_created_at)
        .unwrap_or(0);
    let eta_ms = if finished {
        None
    } else {
        batch::eta_ms(&c, remora_domain::time::now_ms() - started)
    };
    let progress = c.finished() as f64 / c.total() as f64;
    Ok(BatchView {
        batch_id: id,
        total: c.total() as usize,
        finished,
        status,
        progress,
        eta_ms,
        policy: row,
        summary,
        exit_codes,
        servers_total: servers_total as usize,
        servers,
        jobs,
    })
}

/// Cancel a batch: hosts not started end `canceled` (`batch_stopped`), running ones are stopped.
#[utoipa::path(post, path = "/batches/{id}/cancel", tag = "batches", params(("id" = String, Path, description = "Batch id")), responses((status = 200, body = BatchView), (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn cancel_batch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<BatchView>> {
    batch_jobs(&state, &id).await?;
    if state.store.get_batch(&id).await?.is_none() {
        return Err(ApiError::clash(
            "no_policy",
            format!("batch `{id}` predates batch policies; cancel its jobs one by one"),
        ));
    }
    if !state.store.cancel_batch(&id).await? {
        return Err(ApiError::clash(
            "not_running",
            format!("batch `{id}` is no longer running"),
        ));
    }
    // Running jobs stop through the worker's cancel path.
    for j in batch_jobs(&state, &id).await? {
        if j.status == JobStatus::Running {
            let m = remora_domain::events::cancel_message(&j.id);
            let _ = state.queue.publish(&m.topic, m.payload.into()).await;
        }
    }
    crate::audit(&state, &caller, "batch.cancel", "batch", Some(&id), None).await;
    Ok(Json(view(&state, id, &BatchQuery::default()).await?))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerunBody {
    /// `failed` (hosts that did not complete: failed, timed out, canceled) or `all` (default).
    pub only: Option<String>,
}

/// Rerun a finished batch's hosts (`only: "failed"` or `"all"`) as a new batch with the same policy.
#[utoipa::path(post, path = "/batches/{id}/rerun", tag = "batches", params(("id" = String, Path, description = "Batch id")), request_body(content = Option<RerunBody>, content_type = "application/json"), responses((status = 201, body = BatchCreated), (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn rerun_batch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<BatchCreated>)> {
    let o: RerunBody = if body.iter().all(|b| b.is_ascii_whitespace()) || &body[..] == b"null" {
        RerunBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::undecodable(e.to_string()))?
    };
    let only_failed = match o.only.as_deref() {
        None | Some("all") => false,
        Some("failed") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "only",
                format!("`only` must be `failed` or `all`, not `{other}`"),
            ))
        }
    };
    let jobs = batch_jobs(&state, &id).await?;
    if let Some(j) = jobs.iter().find(|j| !j.status.is_final()) {
        return Err(ApiError::clash(
            "not_finished",
            format!("job `{}` of the batch is still {}", j.id, j.status),
        ));
    }
    let pick: Vec<&Job> = jobs
        .iter()
        .filter(|j| !only_failed || j.status != JobStatus::Completed)
        .collect();
    if pick.is_empty() {
        return Err(ApiError::clash(
            "nothing_to_rerun",
            format!("every host of batch `{id}` completed"),
        ));
    }
    let new_batch = remora_domain::new_id();
    let old = state.store.get_batch(&id).await?;
    let row = BatchRow {
        id: new_batch.clone(),
        total: pick.len() as i64,
        max_parallel: old
            .as_ref()
            .map(|r| r.max_parallel.min(pick.len() as i64))
            .unwrap_or(0),
        fail_threshold: old.as_ref().map(|r| r.fail_threshold).unwrap_or(0),
        on_fail: old.as_ref().map(|r| r.on_fail).unwrap_or(OnFail::Stop),
        state: BatchStatus::Running,
        source_batch_id: Some(id.clone()),
        created_at: remora_domain::time::now_ms(),
        stopped_at: None,
    };
    state.store.insert_batch(&row, &[]).await?;
    let mut out = Vec::new();
    for j in pick {
        out.push(copy_job(&state, j, DuplicateBody::default(), Some(new_batch.clone())).await?);
    }
    crate::audit(
        &state,
        &caller,
        "batch.rerun",
        "batch",
        Some(&new_batch),
        Some(&id),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(BatchCreated {
            batch_id: Some(new_batch),
            jobs: out,
        }),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct GroupHost {
    pub server_id: String,
    pub server_name: Option<String>,
    pub job_id: String,
    pub status: JobStatus,
}

/// Hosts whose (stdout, stderr, exit code) are byte-identical, with that output once.
#[derive(Serialize, ToSchema)]
pub struct OutputGroup {
    /// SHA-256 over the stored stdout, stderr and exit code.
    pub hash: String,
    pub exit_code: Option<i64>,
    /// UTF-8 (invalid bytes replaced) of the shared output.
    pub stdout: String,
    pub stderr: String,
    pub stdout_bytes: usize,
    pub stderr_bytes: usize,
    pub count: usize,
    pub hosts: Vec<GroupHost>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchGroups {
    pub batch_id: String,
    pub total: usize,
    /// Largest group first.
    pub groups: Vec<OutputGroup>,
    /// Hosts per exit code (`"none"`: no exit code, e.g. not started or killed).
    pub exit_codes: BTreeMap<String, usize>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupsQuery {
    /// Only hosts in this job status.
    pub status: Option<String>,
}

fn hash_output(out: &[u8], err: &[u8], code: Option<i64>) -> String {
    let mut h = Sha256::new();
    h.update((out.len() as u64).to_le_bytes());
    h.update(out);
    h.update((err.len() as u64).to_le_bytes());
    h.update(err);
    match code {
        Some(c) => {
            h.update([1]);
            h.update(c.to_le_bytes());
        }
        None => h.update([0]),
    }
    hex::encode(h.finalize())
}

/// A batch's hosts grouped by identical stored (stdout, stderr, exit code), and an exit-code histogram.
#[utoipa::path(get, path = "/batches/{id}/groups", tag = "batches", params(("id" = String, Path, description = "Batch id"), GroupsQuery), responses((status = 200, body = BatchGroups), (status = 404, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn groups(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<GroupsQuery>,
) -> ApiResult<Json<BatchGroups>> {
    let want = parse_status(q.status.as_deref())?;
    // Existence (and 404) as before; then the hosts and their output a page at a time.
    if state.store.batch_tally(&id).await?.counts.total() == 0 {
        return Err(ApiError::not_found("batch", &id));
    }
    let mut by_hash: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<OutputGroup> = Vec::new();
    let mut exit_codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0;
    let mut after = None;
    loop {
        let page = state
            .store
            .batch_outputs_page(&id, want, after.take(), OUTPUT_PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.created_at, last.job_id.clone()));
        let full = page.len() as i64 == OUTPUT_PAGE;
        for h in page {
            total += 1;
            *exit_codes.entry(exit_key(h.exit_code)).or_insert(0) += 1;
            let hash = hash_output(&h.stdout, &h.stderr, h.exit_code);
            let host = GroupHost {
                server_id: h.server_id,
                server_name: h.server_name,
                job_id: h.job_id,
                status: h.status,
            };
            match by_hash.get(&hash) {
                Some(&i) => {
                    groups[i].count += 1;
                    groups[i].hosts.push(host);
                }
                None => {
                    by_hash.insert(hash.clone(), groups.len());
                    groups.push(OutputGroup {
                        hash,
                        exit_code: h.exit_code,
                        stdout: String::from_utf8_lossy(&h.stdout).into_owned(),
                        stderr: String::from_utf8_lossy(&h.stderr).into_owned(),
                        stdout_bytes: h.stdout.len(),
                        stderr_bytes: h.stderr.len(),
                        count: 1,
                        hosts: vec![host],
                    });
                }
            }
        }
        if !full {
            break;
        }
    }
    groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.hash.cmp(&b.hash)));
    Ok(Json(BatchGroups {
        batch_id: id,
        total,
        groups,
        exit_codes,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BatchExportQuery {
    /// `ndjson` (default) or `csv`.
    pub format: Option<String>,
}

#[derive(Serialize)]
struct ExportLine<'a> {
    server_id: &'a str,
    server_name: Option<&'a str>,
    job_id: &'a str,
    status: JobStatus,
    exit_code: Option<i64>,
    error_code: Option<&'a str>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    stdout: String,
    stderr: String,
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One line per host of a batch (status, exit code, times, output) as NDJSON or CSV.
#[utoipa::path(get, path = "/batches/{id}/export", tag = "batches", params(("id" = String, Path, description = "Batch id"), BatchExportQuery), responses((status = 200, content_type = "application/x-ndjson", body = String), (status = 404, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn export_batch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<BatchExportQuery>,
) -> ApiResult<Response> {
    let csv = match q.format.as_deref() {
        None | Some("ndjson") => false,
        Some("csv") => true,
        Some(f) => {
            return Err(ApiError::invalid(
                "format",
                format!("format must be `ndjson` or `csv`, not `{f}`"),
            ))
        }
    };
    if state.store.batch_tally(&id).await?.counts.total() == 0 {
        return Err(ApiError::not_found("batch", &id));
    }
    let mut body = String::new();
    if csv {
        body.push_str("server_id,server_name,job_id,status,exit_code,error_code,started_at,finished_at,stdout,stderr\n");
    }
    let mut after = None;
    loop {
        let page = state
            .store
            .batch_outputs_page(&id, None, after.take(), OUTPUT_PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.created_at, last.job_id.clone()));
        let full = page.len() as i64 == OUTPUT_PAGE;
        for h in &page {
            let line = ExportLine {
                server_id: &h.server_id,
                server_name: h.server_name.as_deref(),
                job_id: &h.job_id,
                status: h.status,
                exit_code: h.exit_code,
                error_code: h.error_code.as_deref(),
                started_at: h.started_at,
                finished_at: h.finished_at,
                stdout: String::from_utf8_lossy(&h.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&h.stderr).into_owned(),
            };
            if csv {
                let opt = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_default();
                let cols = [
                    csv_field(line.server_id),
                    csv_field(line.server_name.unwrap_or("")),
                    csv_field(line.job_id),
                    line.status.as_str().to_string(),
                    opt(line.exit_code),
                    csv_field(line.error_code.unwrap_or("")),
                    opt(line.started_at),
                    opt(line.finished_at),
                    csv_field(&line.stdout),
                    csv_field(&line.stderr),
                ];
                body.push_str(&cols.join(","));
                body.push('\n');
            } else {
                body.push_str(&serde_json::to_string(&line).map_err(|e| {
                    tracing::warn!(error = %e, "batch export line");
                    ApiError::internal()
                })?);
                body.push('\n');
            }
        }
        if !full {
            break;
        }
    }
    let (ct, ext) = if csv {
        ("text/csv; charset=utf-8", "csv")
    } else {
        ("application/x-ndjson", "ndjson")
    };
    Ok((
        [
            (header::CONTENT_TYPE, ct.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"remora-batch-{id}.{ext}\""),
            ),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_separates_streams_and_exit_codes() {
        let a = hash_output(b"ab", b"", Some(0));
        assert_eq!(a, hash_output(b"ab", b"", Some(0)));
        assert_ne!(a, hash_output(b"a", b"b", Some(0)));
        assert_ne!(a, hash_output(b"ab", b"", Some(1)));
        assert_ne!(a, hash_output(b"ab", b"", None));
        assert_ne!(a, hash_output(b"ab\n", b"", Some(0)));
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"\n"), "\"say \"\"hi\"\"\n\"");
    }
}
