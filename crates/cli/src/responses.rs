//! The API's reply shapes that the domain crate has no type for (lists,
//! logs, batches, checks, workers, keys, tokens), as far as the CLI reads them.
//! Jobs and servers are the domain's own `Job` and `Server`.

use remora_domain::batch::BatchStatus;
use remora_domain::{Job, JobStatus, Server};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
pub struct ServerList {
    pub servers: Vec<Server>,
}

#[derive(Debug, Deserialize)]
pub struct JobList {
    pub jobs: Vec<Job>,
    pub pagination: Pagination,
}

#[derive(Debug, Deserialize)]
pub struct Pagination {
    pub page: i64,
    pub total: i64,
    pub total_pages: i64,
}

/// What a submission returns: one job, or a batch of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Submitted {
    Batch {
        #[serde(default)]
        batch_id: Option<String>,
        jobs: Vec<Job>,
    },
    One(Box<Job>),
}

impl Submitted {
    /// The batch of a multi-server submission.
    pub fn batch_id(&self) -> Option<&str> {
        match self {
            Submitted::Batch { batch_id, .. } => batch_id.as_deref(),
            Submitted::One(_) => None,
        }
    }
    pub fn jobs(&self) -> Vec<&Job> {
        match self {
            Submitted::Batch { jobs, .. } => jobs.iter().collect(),
            Submitted::One(j) => vec![j],
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Logs {
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
}

#[derive(Debug, Deserialize)]
pub struct BatchView {
    /// `running`, `completed`, `failed`, `stopped`, `canceled` (absent from older APIs).
    #[serde(default)]
    pub status: Option<BatchStatus>,
    #[serde(default)]
    pub finished: bool,
    #[serde(default)]
    pub eta_ms: Option<i64>,
    /// Jobs per status.
    pub summary: BTreeMap<String, i64>,
    pub servers: Vec<BatchCell>,
}

/// `POST /batches/{id}/rerun` and a multi-server submission.
#[derive(Debug, Deserialize)]
pub struct BatchCreated {
    pub batch_id: Option<String>,
    pub jobs: Vec<Job>,
}

/// `GET /batches/{id}/groups`.
#[derive(Debug, Deserialize)]
pub struct BatchGroups {
    pub groups: Vec<OutputGroup>,
    pub exit_codes: BTreeMap<String, usize>,
}

#[derive(Debug, Deserialize)]
pub struct OutputGroup {
    pub exit_code: Option<i64>,
    pub stdout: String,
    pub stderr: String,
    pub hosts: Vec<GroupHost>,
}

#[derive(Debug, Deserialize)]
pub struct GroupHost {
    pub server_id: String,
    pub server_name: Option<String>,
    pub status: JobStatus,
}

#[derive(Debug, Deserialize)]
pub struct BatchCell {
    pub server_name: Option<String>,
    pub job_id: String,
    pub status: JobStatus,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
}

/// `/servers/{id}/test` and `/status`.
#[derive(Debug, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub ok: bool,
    pub status: String,
    pub latency_ms: Option<u64>,
    pub host_key_fingerprint: Option<String>,
    pub host_key_status: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct WorkerList {
    pub workers: Vec<WorkerInfo>,
}

#[derive(Debug, Deserialize)]
pub struct WorkerInfo {
    pub id: String,
    pub hostname: String,
    pub version: String,
    pub concurrency: i64,
    pub running: i64,
    #[serde(with = "remora_domain::time::rfc3339")]
    pub last_heartbeat_at: i64,
    pub up: bool,
}

#[derive(Debug, Deserialize)]
pub struct PemList {
    pub pem_files: Vec<PemFile>,
}

#[derive(Debug, Deserialize)]
pub struct PemFile {
    pub id: String,
    pub key_type: String,
    pub fingerprint: String,
    pub size: i64,
    #[serde(with = "remora_domain::time::rfc3339")]
    pub created_at: i64,
}

#[derive(Debug, Deserialize)]
pub struct TokenList {
    pub tokens: Vec<TokenRow>,
}

#[derive(Debug, Deserialize)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub role: String,
    #[serde(with = "remora_domain::time::rfc3339")]
    pub created_at: i64,
    #[serde(with = "remora_domain::time::opt_rfc3339")]
    pub revoked_at: Option<i64>,
}

/// A new token, with its secret (shown once).
#[derive(Debug, Deserialize)]
pub struct TokenCreated {
    pub name: String,
    pub role: String,
    pub token: String,
}
