//! OpenAPI 3.1 document, generated from the handlers' annotations (utoipa):
//! the router and the spec come from the same `routes!` registrations, so a
//! route cannot exist without being documented. Served at
//! `/api/openapi.json`, with Swagger UI (assets bundled in the binary) at
//! `/api/docs`.

use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(title = "Remora API", description = "Self-hosted SSH remote execution. Every `/api/v1` route needs `Authorization: Bearer <token>`."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "servers", description = "SSH targets and their checks"),
        (name = "jobs", description = "Submitting, reading and controlling jobs"),
        (name = "keys", description = "Uploaded private keys"),
        (name = "credentials", description = "Keys and passwords shared by servers (secrets never returned)"),
        (name = "trusted-cas", description = "SSH certificate authorities trusted for host certificates"),
        (name = "system", description = "Health, workers, statistics"),
        (name = "admin", description = "Tokens and the audit log"),
        (name = "templates", description = "Saved jobs with typed parameters, runs and incoming triggers"),
        (name = "schedules", description = "Templates run on a cron expression in a time zone"),
        (name = "notifications", description = "Webhook and email targets, their delivery log"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;
impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Every `/api/v1` operation may also answer with these (request
/// problems the handler never sees, auth, limits, the database down).
/// Applied to the assembled document (after the routers merged their paths).
pub struct CommonErrors;
impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let common: [(&str, &str); 9] = [
            ("400", "Malformed request (query string, path, JSON syntax)"),
            ("401", "Missing or invalid token"),
            ("403", "The token's role does not allow this"),
            ("405", "Method not allowed"),
            ("413", "Body larger than the configured limit"),
            ("415", "Body is not of the documented content type"),
            ("422", "A field failed validation (`field` names it)"),
            ("429", "Rate limited (see Retry-After)"),
            ("503", "The database did not answer"),
        ];
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/v1") {
                continue;
            }
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                for (code, desc) in common {
                    op.responses
                        .responses
                        .entry(code.to_string())
                        .or_insert_with(|| {
                            ResponseBuilder::new()
                                .description(desc)
                                .content(
                                    "application/json",
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                                        .build(),
                                )
                                .build()
                                .into()
                        });
                }
            }
        }
    }
}

/// `{"error": {...}}`
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code.
    pub code: String,
    pub message: String,
    /// The request field at fault, for validation errors.
    pub field: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Pagination {
    pub page: i64,
    pub limit: i64,
    /// Matching jobs; counted up to `REMORA_LIST_COUNT_CAP`, or `REMORA_SEARCH_COUNT_CAP` with a
    /// `search` (then `total_exact` is false and `total` is a lower bound).
    pub total: i64,
    pub total_exact: bool,
    pub total_pages: i64,
    pub has_next: bool,
    pub has_prev: bool,
}

#[derive(Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<remora_domain::Job>,
    pub pagination: Pagination,
}

#[derive(Serialize, ToSchema)]
pub struct ServerList {
    pub servers: Vec<remora_domain::Server>,
    pub total: usize,
}

/// A multi-server submission.
#[derive(Serialize, ToSchema)]
pub struct BatchCreated {
    pub batch_id: Option<String>,
    pub jobs: Vec<remora_domain::Job>,
}

#[derive(Serialize, ToSchema)]
pub struct Logs {
    pub job_id: String,
    pub status: remora_domain::JobStatus,
    pub exit_code: Option<i64>,
    pub exit_signal: Option<String>,
    pub error: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_bytes: i64,
    pub stderr_bytes: i64,
    pub truncated: bool,
}

#[derive(Serialize, ToSchema)]
pub struct BatchCell {
    pub server_id: String,
    pub server_name: Option<String>,
    pub job_id: String,
    pub status: remora_domain::JobStatus,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchView {
    pub batch_id: String,
    pub total: usize,
    pub finished: bool,
    /// `running`, `completed` (all succeeded), `failed` (some did not), `stopped` (fail threshold) or `canceled`.
    pub status: remora_domain::batch::BatchStatus,
    /// Share of hosts in a final status, 0 to 1.
    pub progress: f64,
    /// Estimated milliseconds left, from the mean pace so far (null before the first host ends or once done).
    pub eta_ms: Option<i64>,
    /// The batch's policy and state (null for batches submitted before batch policies).
    pub policy: Option<remora_store::BatchRow>,
    /// Jobs per status.
    pub summary: std::collections::BTreeMap<String, i64>,
    /// Hosts per exit code over the whole batch (`"none"`: no exit code, e.g. not started or killed).
    pub exit_codes: std::collections::BTreeMap<String, usize>,
    /// Hosts matching the `status` / `search` filter, before `offset` / `limit`.
    pub servers_total: usize,
    /// The per-server grid: the filtered hosts from `offset`, at most `limit`.
    pub servers: Vec<BatchCell>,
    /// Every job of the batch (empty with `jobs=false`).
    pub jobs: Vec<remora_domain::Job>,
}

#[derive(Serialize, ToSchema)]
pub struct WorkerInfo {
    #[serde(flatten)]
    pub worker: remora_store::WorkerRow,
    /// Heartbeat within the down-after window.
    pub up: bool,
}

#[derive(Serialize, ToSchema)]
pub struct WorkerList {
    pub workers: Vec<WorkerInfo>,
}

#[derive(Serialize, ToSchema)]
pub struct PemList {
    pub pem_files: Vec<remora_store::PemFile>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<remora_store::TokenRow>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenCreated {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at: String,
    /// The secret; shown only in this response.
    pub token: String,
}

/// `GET /me`: who the token is.
#[derive(Serialize, ToSchema)]
pub struct Me {
    pub token_id: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub entries: Vec<remora_store::AuditEntry>,
}

#[derive(Serialize, ToSchema)]
pub struct BulkStatus {
    pub servers: Vec<crate::checks::CheckResult>,
    pub total: usize,
    pub reachable: usize,
    pub took_ms: u64,
}

#[derive(Serialize, ToSchema)]
pub struct JobCounts {
    pub total: i64,
    pub by_status: std::collections::BTreeMap<String, i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ServerCounts {
    pub total: usize,
    pub active: usize,
    pub reachable: usize,
}

#[derive(Serialize, ToSchema)]
pub struct WorkerCounts {
    pub up: usize,
    pub down: usize,
}

#[derive(Serialize, ToSchema)]
pub struct SystemInfo {
    pub version: String,
    pub jobs: JobCounts,
    /// completed / (completed + failed + timed_out); null when none finished.
    pub success_rate: Option<f64>,
    pub servers: ServerCounts,
    pub workers: WorkerCounts,
    /// Ready and delayed jobs in the queue; null when the queue is unreachable.
    pub queue_depth: Option<u64>,
    /// Most servers one submission may target (`REMORA_MAX_BATCH_HOSTS`).
    pub max_batch_hosts: usize,
}

#[derive(Serialize, ToSchema)]
pub struct MinutePoint {
    pub minute: String,
    pub completed: i64,
    /// failed + timed_out
    pub failed: i64,
    pub canceled: i64,
    pub total: i64,
}

#[derive(Serialize, ToSchema)]
pub struct SystemEnhanced {
    #[serde(flatten)]
    pub info: SystemInfo,
    /// The last 60 minutes, oldest first.
    pub throughput: Vec<MinutePoint>,
    pub jobs_last_hour: i64,
    pub jobs_per_minute: f64,
    /// Finished jobs' output packed with zstd: bytes before and after, and the ratio.
    pub output_compression: remora_store::CompressionTotals,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
    pub database: String,
}
