//! remora-api: the REST API (`/api/v1`), live streams, health, and the
//! dashboard's static files. `app(state)` builds the router so tests can call
//! it without a socket; `run` serves it on a bound listener.

pub mod auth;
pub mod background;
pub mod batches;
pub mod body_timeout;
pub mod checks;
pub mod config;
pub mod credentials;
pub mod error;
pub mod hostkeys;
pub mod import;
pub mod jobs;
pub mod jumps;
pub mod live;
pub mod lookup;
pub mod metrics;
pub mod notifications;
pub mod openapi;
pub mod pem;
pub mod retention;
pub mod schedules;
pub mod serve;
pub mod servers;
pub mod stream;
pub mod system;
pub mod templates;
pub mod tokens;
pub mod trusted_cas;
pub mod workers;

use axum::{middleware, Json, Router};
use remora_netqueue::Client;
use remora_store::{Store, Vault};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest accepted request body, in bytes.
    pub max_body: usize,
    /// Shells a script job may name.
    pub allowed_shells: Vec<String>,
    /// Upper bound of a job's `timeout`, seconds.
    pub max_timeout: i64,
    /// Largest script and command text, bytes (`REMORA_MAX_SCRIPT_BYTES`,
    /// `REMORA_MAX_COMMAND_BYTES`).
    pub text_limits: remora_domain::command::TextLimits,
    /// Static dashboard files served at `/` when present.
    pub web_dir: Option<PathBuf>,
    /// A worker whose last heartbeat is older than this is down.
    pub worker_down_after: std::time::Duration,
    pub default_max_retries: i64,
    /// Per-host timeout of server checks.
    pub check_timeout: std::time::Duration,
    /// Servers checked at once by the bulk status check.
    pub check_concurrency: usize,
    /// Largest PEM upload, bytes.
    pub pem_max_bytes: usize,
    /// Requests per second per token (burst twice that); 0 disables the limit.
    pub rate_limit: u32,
    /// Valid tokens are trusted this long without reading them again, ms (0 = never).
    pub auth_cache_ms: u64,
    /// Origins allowed by CORS; empty = CORS off.
    pub cors_origins: Vec<String>,
    /// Job lists count matching rows up to this many (0 = always exact).
    pub list_count_cap: i64,
    /// Lists with a free-text `search` count up to this many (0 = always exact).
    pub search_count_cap: i64,
    /// How often the scheduler looks for due schedules.
    pub schedule_tick: std::time::Duration,
    /// Between the reconciler's passes over `queued` jobs (`REMORA_RECONCILE_INTERVAL`).
    pub reconcile_interval: std::time::Duration,
    /// A due time this late (scheduler down) counts as missed: `catch_up` decides.
    pub schedule_grace: std::time::Duration,
    /// Jump hosts allowed on the way to one server (`REMORA_MAX_JUMP_DEPTH`).
    pub max_jump_depth: usize,
    /// What parsing an uploaded or stored private key may cost (`REMORA_MAX_KDF_ROUNDS`).
    pub key_limits: remora_ssh::KeyLimits,
    /// Live events buffered per watched job (then the stream catches up from the database).
    pub sse_job_buffer: usize,
    /// Status events buffered for `/events` (then the client gets `event: lagged`).
    pub sse_status_buffer: usize,
    /// Open SSE streams (`/jobs/{id}/stream` and `/events`) one token may hold (`REMORA_SSE_MAX_PER_TOKEN`).
    pub sse_max_per_token: usize,
    /// Open SSE streams in all (`REMORA_SSE_MAX_TOTAL`).
    pub sse_max_total: usize,
    /// How often a job stream reads the job from the database in case an event was lost;
    /// between polls it wakes on the job's events only (`REMORA_SSE_FALLBACK_POLL`).
    pub sse_fallback_poll: std::time::Duration,
    /// Notifications: retries, timeouts, SMTP.
    pub notify: remora_notify::NotifyConfig,
    /// Retention and output compression task.
    pub maintenance: remora_store::maintenance::MaintenanceConfig,
    /// Most hosts one submission (`server_ids` or `tag`) may target, and one import may hold.
    pub max_batch_hosts: usize,
    /// Largest inventory file one import takes, bytes (`REMORA_MAX_IMPORT_BYTES`).
    pub max_import_bytes: usize,
    /// Most host patterns of one trusted CA (`REMORA_MAX_CA_PATTERNS`).
    pub max_ca_patterns: usize,
    /// A connection that has not sent a whole request head this long is closed
    /// (`REMORA_HEADER_READ_TIMEOUT`).
    pub header_read_timeout: std::time::Duration,
    /// Most open HTTP connections; more wait in the listen backlog (`REMORA_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// A request body not received this long after its head is a 408 (`REMORA_BODY_TIMEOUT`).
    pub body_timeout: std::time::Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body: 8 * 1024 * 1024,
            max_batch_hosts: 10_000,
            max_import_bytes: 4 * 1024 * 1024,
            max_ca_patterns: trusted_cas::DEFAULT_MAX_PATTERNS,
            header_read_timeout: std::time::Duration::from_secs(
                serve::DEFAULT_HEADER_READ_TIMEOUT_SECS,
            ),
            max_connections: serve::DEFAULT_MAX_CONNECTIONS,
            body_timeout: std::time::Duration::from_secs(body_timeout::DEFAULT_BODY_TIMEOUT_SECS),
            allowed_shells: [
                "/bin/bash",
                "/bin/sh",
                "bash",
                "sh",
                "/usr/bin/bash",
                "/bin/dash",
                "/bin/zsh",
                "/usr/bin/zsh",
                "/usr/bin/python3",
                "python3",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            max_timeout: 7 * 24 * 3600,
            text_limits: Default::default(),
            web_dir: None,
            worker_down_after: std::time::Duration::from_secs(30),
            default_max_retries: 2,
            check_timeout: std::time::Duration::from_secs(5),
            check_concurrency: 32,
            pem_max_bytes: 64 * 1024,
            max_jump_depth: remora_ssh::chain::DEFAULT_MAX_JUMP_DEPTH,
            key_limits: remora_ssh::KeyLimits::default(),
            rate_limit: 100,
            auth_cache_ms: 1000,
            cors_origins: Vec::new(),
            list_count_cap: 10_000,
            search_count_cap: 1_000,
            schedule_tick: std::time::Duration::from_secs(1),
            reconcile_interval: std::time::Duration::from_secs(15),
            schedule_grace: std::time::Duration::from_secs(60),
            sse_job_buffer: 1024,
            sse_status_buffer: 4096,
            sse_max_per_token: 32,
            sse_max_total: 1024,
            sse_fallback_poll: std::time::Duration::from_secs(15),
            notify: Default::default(),
            maintenance: Default::default(),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub vault: Vault,
    pub queue: Client,
    pub cfg: Arc<ApiConfig>,
    /// Pub/sub events from the queue, fanned out per job to SSE clients.
    pub live: Arc<live::Hub>,
    /// Open SSE streams under their caps.
    pub streams: Arc<live::StreamSlots>,
    /// Wakes the pusher after a job was written.
    pub push_wake: Arc<tokio::sync::Notify>,
    pub metrics: Arc<metrics::Metrics>,
    pub limiter: Arc<auth::Limiter>,
    /// Valid tokens recently read (`REMORA_AUTH_CACHE_MS`).
    pub tokens: Arc<auth::TokenCache>,
}

impl AppState {
    pub fn new(store: Store, vault: Vault, queue: Client, cfg: ApiConfig) -> AppState {
        let limiter = Arc::new(auth::limiter(cfg.rate_limit));
        let cfg_ttl = cfg.auth_cache_ms;
        let live = Arc::new(live::Hub::new(cfg.sse_job_buffer, cfg.sse_status_buffer));
        let streams = Arc::new(live::StreamSlots::new(
            cfg.sse_max_per_token,
            cfg.sse_max_total,
        ));
        AppState {
            store,
            vault,
            queue,
            cfg: Arc::new(cfg),
            live,
            streams,
            push_wake: Arc::new(tokio::sync::Notify::new()),
            metrics: Arc::new(metrics::Metrics::new()),
            limiter,
            tokens: Arc::new(auth::TokenCache::new(cfg_ttl)),
        }
    }
}

/// Liveness: the process answers. `database` reports whether it answers too.
#[utoipa::path(get, path = "/health", tag = "system", security(()), responses((status = 200, body = openapi::Health)))]
async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Json<openapi::Health> {
    let db = state.store.ping().await.is_ok();
    Json(openapi::Health {
        status: "healthy".into(),
        version: remora_domain::VERSION.into(),
        database: if db { "ok" } else { "unreachable" }.into(),
    })
}

/// Readiness: 200 when the database and the queue answer and the queue can write its log, else
/// 503 naming what does not.
#[utoipa::path(get, path = "/ready", tag = "system", security(()), responses((status = 200, description = "Ready"), (status = 503, body = openapi::ErrorBody)))]
async fn ready(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<Json<serde_json::Value>, error::ApiError> {
    let db = state.store.ping().await.is_ok();
    // STATS rather than PING: a queue that answers but cannot write its log is not ready either.
    let stats = tokio::time::timeout(std::time::Duration::from_secs(2), state.queue.stats()).await;
    let (queue, storage) = match stats {
        Ok(Ok(s)) => (true, !s.server.storage_failed),
        _ => (false, true),
    };
    if db && queue && storage {
        return Ok(Json(
            json!({ "status": "ready", "database": "ok", "queue": "ok" }),
        ));
    }
    let mut down = Vec::new();
    if !db {
        down.push("database");
    }
    if !queue {
        down.push("queue");
    }
    if !storage {
        down.push("queue storage (its log cannot be written)");
    }
    Err(error::ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        format!("unreachable: {}", down.join(", ")),
    ))
}

/// Record a mutating action in the audit log (failures are logged, not fatal).
pub async fn audit(
    state: &AppState,
    caller: &auth::Caller,
    action: &str,
    object_type: &str,
    object_id: Option<&str>,
    detail: Option<&str>,
) {
    if let Err(e) = state
        .store
        .audit(
            Some(&caller.token_id),
            action,
            object_type,
            object_id,
            detail,
        )
        .await
    {
        tracing::warn!(error = %e, action, "writing the audit log failed");
    }
}

/// Every `/api/v1` route, with its OpenAPI description.
fn v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(import::router())
        .merge(hostkeys::router())
        .merge(servers::router())
        .merge(jobs::router())
        .merge(batches::router())
        .merge(stream::router())
        .merge(workers::router())
        .merge(pem::router())
        .merge(credentials::router())
        .merge(trusted_cas::router())
        .merge(system::router())
        .merge(tokens::router())
        .merge(templates::router())
        .merge(schedules::router())
        .merge(notifications::router())
        .merge(retention::router())
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, spec) = OpenApiRouter::<AppState>::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics::render))
        .nest("/api/v1", v1().merge(templates::hooks_router()))
        .split_for_parts();
    finish_spec(spec)
}

fn finish_spec(mut spec: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::Modify;
    openapi::CommonErrors.modify(&mut spec);
    spec
}

pub fn app(state: AppState) -> Router {
    let v1 = v1().route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_token,
    ));
    let (router, spec) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics::render))
        .nest("/api/v1", v1.merge(templates::hooks_router()))
        .split_for_parts();
    let mut router = router
        .merge(
            utoipa_swagger_ui::SwaggerUi::new("/api/docs")
                .url("/api/openapi.json", finish_spec(spec)),
        )
        .fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "not_found",
                "no such route",
            )
        });
    if let Some(dir) = state
        .cfg
        .web_dir
        .clone()
        .filter(|d| d.join("index.html").exists())
    {
        // The dashboard (an SPA: unknown paths get index.html), but never
        // for API paths, which answer a JSON 404.
        let serve = tower_http::services::ServeDir::new(&dir)
            .fallback(tower_http::services::ServeFile::new(dir.join("index.html")));
        router = router.fallback(move |req: axum::extract::Request| {
            let serve = serve.clone();
            async move {
                use axum::response::IntoResponse;
                use tower::ServiceExt;
                if req.uri().path().starts_with("/api/") {
                    return error::ApiError::new(
                        axum::http::StatusCode::NOT_FOUND,
                        "not_found",
                        "no such route",
                    )
                    .into_response();
                }
                match serve.oneshot(req).await {
                    Ok(r) => r.into_response(),
                    Err(e) => match e {},
                }
            }
        });
    }
    let mut router = router
        .layer(middleware::from_fn_with_state(
            state.clone(),
            body_timeout::limit,
        ))
        .layer(middleware::from_fn(error::refuse_nul))
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn(error::log_failures))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(state.cfg.max_body))
        .layer(tower_http::trace::TraceLayer::new_for_http());
    if !state.cfg.cors_origins.is_empty() {
        // `*` alone means any origin (tower-http panics on `*` inside a list).
        let origins = if state.cfg.cors_origins.iter().any(|o| o.trim() == "*") {
            tower_http::cors::AllowOrigin::any()
        } else {
            let list: Vec<axum::http::HeaderValue> = state
                .cfg
                .cors_origins
                .iter()
                .filter_map(|o| o.trim().parse().ok())
                .collect();
            tower_http::cors::AllowOrigin::list(list)
        };
        router = router.layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([
                    axum::http::Method::GET,
                    axum::http::Method::POST,
                    axum::http::Method::PUT,
                    axum::http::Method::DELETE,
                ])
                .allow_headers([
                    axum::http::header::AUTHORIZATION,
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderName::from_static("last-event-id"),
                ]),
        );
    }
    router.with_state(state)
}

/// Serve the API on `listener` until `shutdown`, with its background tasks
/// (queue pusher and reconciler, worker reaper, event fan-out).
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let tracker = tokio_util::task::TaskTracker::new();
    background::spawn_all(&tracker, state.clone(), shutdown.clone());
    let header_read_timeout = state.cfg.header_read_timeout;
    let slots = Arc::new(tokio::sync::Semaphore::new(
        state.cfg.max_connections.max(1),
    ));
    let router = app(state);
    serve::serve(
        listener,
        router,
        header_read_timeout,
        slots,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    tracker.close();
    tracker.wait().await;
    Ok(())
}

#[cfg(test)]
mod hardening_tests;
#[cfg(test)]
mod import_tests;
#[cfg(test)]
mod serve_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;
