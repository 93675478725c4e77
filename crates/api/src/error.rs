//! The API's error type: a status, a stable snake_case code, a human
//! message and, for validation errors, the offending field; some conflicts
//! add machine-readable `details`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use remora_store::StoreError;
use serde_json::json;

/// Every error a handler returns. Each variant answers with a status, a
/// stable snake_case `code`, a message and, where one field is at fault,
/// that `field` (see `IntoResponse`). Server-side failures keep their
/// detail for the log (`log_failures`), never for the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422: the request names a field whose value is refused
    /// (`validation_failed`, `missing_field`, `invalid_field`).
    #[error("{message}")]
    Invalid {
        code: &'static str,
        field: Option<String>,
        message: String,
    },
    /// 404 `not_found`.
    #[error("{message}")]
    NotFound {
        message: String,
        field: Option<String>,
    },
    /// 409: the request clashes with the current state (`conflict`,
    /// `not_finished`, `already_finished`).
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        field: Option<String>,
        /// Boxed: most errors carry none, and the enum stays small.
        details: Option<Box<ErrorDetails>>,
    },
    /// 401 `unauthorized`.
    #[error("{0}")]
    Unauthorized(String),
    /// 503 `database_unavailable`: the store failed (its detail is logged).
    #[error("database error: {0}")]
    Store(StoreError),
    /// Any other status and code.
    #[error("{message}")]
    Other {
        status: StatusCode,
        code: &'static str,
        message: String,
        field: Option<String>,
        /// Sent as `Retry-After` (seconds): when a retry may succeed.
        retry_after: Option<u64>,
    },
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Machine-readable context of an error (`error.details`), beside the message meant for people:
/// a client acts on these without parsing the message.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetails {
    /// The servers a 409 concerns: those using a credential that cannot be deleted, those
    /// reached through a jump host that cannot be deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub servers: Option<Vec<ErrorServer>>,
}

/// A server named by an error.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorServer {
    pub id: String,
    pub name: String,
}

/// Unique constraints (as `StoreError::Conflict` names them) and the field
/// of the request each concerns. Constraints on values the server makes
/// (ids, token hashes) concern no field.
const CONSTRAINT_FIELDS: &[(&str, &str)] = &[(SERVER_NAME_KEY, "name")];

/// The unique constraint on server names.
pub const SERVER_NAME_KEY: &str = "servers_name_key";

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Other {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }
    /// The same error answered with `Retry-After: secs` (for a status other than 409/422/404/401).
    pub fn retry_after(mut self, secs: u64) -> Self {
        if let ApiError::Other { retry_after, .. } = &mut self {
            *retry_after = Some(secs);
        }
        self
    }
    /// 422 naming a field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            code: "validation_failed",
            field: Some(field.to_string()),
            message: message.into(),
        }
    }
    pub fn missing(field: &str) -> Self {
        ApiError::Invalid {
            code: "missing_field",
            field: Some(field.to_string()),
            message: format!("`{field}` is required"),
        }
    }
    /// 422 for a body that does not deserialize, naming the field serde's
    /// message names (an unknown or missing field, or the path of a value
    /// of the wrong type), when it names one.
    pub fn undecodable(message: String) -> Self {
        let field = undecodable_field(&message);
        ApiError::Invalid {
            code: "invalid_field",
            field,
            message,
        }
    }
    pub fn not_found(what: &str, id: &str) -> Self {
        ApiError::NotFound {
            message: format!("{what} `{id}` does not exist"),
            field: None,
        }
    }
    pub fn conflict(field: &str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            code: "conflict",
            message: message.into(),
            field: Some(field.to_string()),
            details: None,
        }
    }
    /// 409 with its own code and no field.
    pub fn clash(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            code,
            message: message.into(),
            field: None,
            details: None,
        }
    }
    /// The same conflict listing the servers it concerns in `details.servers` (id, name).
    /// Other errors are returned unchanged.
    pub fn with_servers(mut self, servers: impl IntoIterator<Item = (String, String)>) -> Self {
        if let ApiError::Conflict { details, .. } = &mut self {
            let list = servers
                .into_iter()
                .map(|(id, name)| ErrorServer { id, name })
                .collect();
            details.get_or_insert_with(Default::default).servers = Some(list);
        }
        self
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::Unauthorized(message.into())
    }
    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }
    /// The same error naming `f` as the field at fault.
    pub fn with_field(mut self, f: &str) -> Self {
        match &mut self {
            ApiError::Invalid { field, .. }
            | ApiError::NotFound { field, .. }
            | ApiError::Conflict { field, .. }
            | ApiError::Other { field, .. } => *field = Some(f.to_string()),
            ApiError::Unauthorized(_) | ApiError::Store(_) => {}
        }
        self
    }
    /// 409 for a violated unique constraint, naming the field it concerns.
    pub fn on_constraint(constraint: &str) -> Self {
        let field = CONSTRAINT_FIELDS
            .iter()
            .find(|(c, _)| *c == constraint)
            .map(|(_, f)| f.to_string());
        ApiError::Conflict {
            code: "conflict",
            message: "an object with the same unique value already exists".into(),
            field,
            details: None,
        }
    }
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Other { status, .. } => *status,
        }
    }
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Other { code, .. } => code,
            ApiError::NotFound { .. } => "not_found",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Store(_) => "database_unavailable",
        }
    }
    /// What the client reads (never a server-side detail).
    pub fn message(&self) -> String {
        match self {
            ApiError::Store(_) => "the database did not answer; try again".into(),
            other => other.to_string(),
        }
    }
    pub fn field(&self) -> Option<&str> {
        match self {
            ApiError::Invalid { field, .. }
            | ApiError::NotFound { field, .. }
            | ApiError::Conflict { field, .. }
            | ApiError::Other { field, .. } => field.as_deref(),
            ApiError::Unauthorized(_) | ApiError::Store(_) => None,
        }
    }
}

fn undecodable_field(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .unwrap_or(message);
    for p in ["unknown field `", "missing field `", "duplicate field `"] {
        if let Some(f) = rest.strip_prefix(p) {
            return f.split('`').next().map(str::to_string);
        }
    }
    // `path: error`, as axum reports a value of the wrong type.
    let (path, _) = rest.split_once(": ")?;
    path.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'))
        .then(|| path.to_string())
}

/// A store error is a 409 naming its field (a unique violation) or a 503.
/// Nothing is logged here: `log_failures` logs every 5xx in one place.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { constraint } => ApiError::on_constraint(&constraint),
            // PostgreSQL refuses text it cannot store (a NUL byte: SQLSTATE 22021, or an
            // untranslatable character: 22P05); that is the request's fault, not an outage.
            // `refuse_nul` and `JsonBody` catch NUL bytes first; this is the safety net.
            e if e.is_unstorable_text() => ApiError::Invalid {
                code: "invalid_text",
                field: None,
                message: "the request holds text the database cannot store (a NUL byte?)".into(),
            },
            other => ApiError::Store(other),
        }
    }
}

/// 422 for text with a NUL byte, which PostgreSQL cannot store (and no
/// shell, name or id can hold): refused the same way on both databases.
fn nul_error(field: &str) -> ApiError {
    ApiError::Invalid {
        code: "invalid_text",
        field: (!field.is_empty()).then(|| field.to_string()),
        message: if field.is_empty() {
            "text must not contain NUL bytes".into()
        } else {
            format!("`{field}` must not contain NUL bytes")
        },
    }
}

/// The path of the first string of a JSON body (a value or a key) holding a
/// NUL byte (`script`, `args[1]`, `env.X`), `Some("")` at the top level;
/// `None` when there is none (or the body is not JSON: its parser says so).
fn nul_field(body: &[u8]) -> Option<String> {
    // A NUL can only be written `\u0000` in JSON: skip the parse otherwise.
    if !body.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    fn walk(v: &serde_json::Value, path: &str) -> Option<String> {
        match v {
            serde_json::Value::String(s) => s.contains('\0').then(|| path.to_string()),
            serde_json::Value::Array(a) => a
                .iter()
                .enumerate()
                .find_map(|(i, x)| walk(x, &format!("{path}[{i}]"))),
            serde_json::Value::Object(o) => o.iter().find_map(|(k, x)| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if k.contains('\0') {
                    Some(p)
                } else {
                    walk(x, &p)
                }
            }),
            _ => None,
        }
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    walk(&v, "")
}

/// Refuse a request whose path or query holds a NUL byte (`%00`) with a
/// 422 naming the query parameter (or `path`), before any handler runs.
pub async fn refuse_nul(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let uri = req.uri();
    if uri.path().contains("%00") {
        return nul_error("path").into_response();
    }
    if let Some(q) = uri.query() {
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if v.contains("%00") || k.contains("%00") {
                let key = if k.contains("%00") { "" } else { k };
                return nul_error(key).into_response();
            }
        }
    }
    next.run(req).await
}

/// A `Result` of the store whose unique violation of `constraint` becomes
/// `f()` (a message naming the value, say); other errors convert as usual.
pub trait OnConstraint<T> {
    fn on_constraint(self, constraint: &str, f: impl FnOnce() -> ApiError) -> ApiResult<T>;
}

impl<T> OnConstraint<T> for Result<T, StoreError> {
    fn on_constraint(self, constraint: &str, f: impl FnOnce() -> ApiError) -> ApiResult<T> {
        self.map_err(|e| match e {
            StoreError::Conflict { constraint: c } if c == constraint => f(),
            other => other.into(),
        })
    }
}

/// The server-side detail of a failed response, carried in its extensions
/// from `IntoResponse` to `log_failures`.
#[derive(Clone, Debug)]
struct FailureDetail(String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = json!({ "error": { "code": self.code(), "message": self.message() } });
        if let Some(f) = self.field() {
            body["error"]["field"] = json!(f);
        }
        if let ApiError::Conflict {
            details: Some(d), ..
        } = &self
        {
            body["error"]["details"] = json!(d);
        }
        let mut resp = (status, Json(body)).into_response();
        if let ApiError::Other {
            retry_after: Some(secs),
            ..
        } = &self
        {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*secs),
            );
        }
        if status.is_server_error() {
            resp.extensions_mut()
                .insert(FailureDetail(self.to_string()));
        }
        resp
    }
}

/// Log every failed request (5xx) once, at error level, with its detail:
/// method, path (never the query string),
/// status and code. Client errors (4xx) are the client's to read.
pub async fn log_failures(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status();
    if status.is_server_error() {
        let detail = resp
            .extensions()
            .get::<FailureDetail>()
            .map(|d| d.0.as_str())
            .unwrap_or("");
        tracing::error!(%method, %path, status = status.as_u16(), detail, "request failed");
    }
    resp
}

/// `Json<T>` whose rejections are `ApiError`s in our JSON shape.
pub struct JsonBody<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        use axum::extract::rejection::JsonRejection;
        // Read the body (within DefaultBodyLimit) to look for NUL bytes, then hand the same
        // bytes to `Json`, whose checks and messages stay as they are.
        let headers = req.headers().clone();
        let bytes = match bytes::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is larger than the configured limit",
                ))
            }
            Err(e) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    e.body_text(),
                ))
            }
        };
        if let Some(field) = nul_field(&bytes) {
            return Err(nul_error(&field));
        }
        let mut req = axum::extract::Request::new(axum::body::Body::from(bytes));
        *req.headers_mut() = headers;
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            )),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::undecodable(e.body_text())),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                e.body_text(),
            )),
            Err(JsonRejection::BytesRejection(e)) => {
                let status = e.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    Err(ApiError::new(
                        status,
                        "payload_too_large",
                        "the request body is larger than the configured limit",
                    ))
                } else {
                    Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        e.body_text(),
                    ))
                }
            }
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                e.body_text(),
            )),
        }
    }
}

/// Turn any plain-text error response (axum's own extractor rejections:
/// bad query strings, bad paths, missing content types, multipart errors)
/// into the API's JSON error shape, so every error a client sees is JSON.
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_text = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| ct.starts_with("text/plain"))
        .unwrap_or(true);
    if !is_text {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let mut message = String::from_utf8_lossy(&bytes).trim().to_string();
    if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_string();
    }
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
        _ if status.is_server_error() => "internal",
        _ => "error",
    };
    let mut out = ApiError::new(status, code, message).into_response();
    for (k, v) in parts.headers.iter() {
        if k != axum::http::header::CONTENT_TYPE && k != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}
