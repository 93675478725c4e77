//! Jobs: kinds, the status lifecycle and the shapes the API returns.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Canceled,
    TimedOut,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Canceled,
        JobStatus::TimedOut,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Canceled => "canceled",
            JobStatus::TimedOut => "timed_out",
        }
    }
    pub fn is_final(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown job status `{0}` (expected one of queued, running, completed, failed, canceled, timed_out)")]
pub struct UnknownStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Command,
    Script,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Command => "command",
            JobKind::Script => "script",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "command" => Some(JobKind::Command),
            "script" => Some(JobKind::Script),
            _ => None,
        }
    }
}

/// A job as stored and as returned by the API (never with output bodies).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Job {
    pub id: String,
    pub kind: JobKind,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub script: Option<String>,
    pub shell: Option<String>,
    pub server_id: String,
    pub batch_id: Option<String>,
    pub status: JobStatus,
    pub priority: i64,
    /// Seconds; 0 means no limit.
    pub timeout: i64,
    pub exit_code: Option<i64>,
    pub exit_signal: Option<String>,
    /// A human sentence for failures.
    pub error: Option<String>,
    /// A stable machine code for failures (`host_key_mismatch`, `connect_failed`, ...).
    pub error_code: Option<String>,
    pub attempt: i64,
    pub max_retries: i64,
    pub worker_id: Option<String>,
    pub cancel_requested: bool,
    #[serde(with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "crate::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<i64>,
    #[serde(with = "crate::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<i64>,
    pub stdout_bytes: i64,
    pub stderr_bytes: i64,
    pub truncated: bool,
}

impl Job {
    /// A new `queued` job of `kind` for `server_id`, created now, with no
    /// run state; callers fill in what it runs.
    pub fn queued(kind: JobKind, server_id: String) -> Job {
        Job {
            id: crate::new_id(),
            kind,
            command: None,
            args: Vec::new(),
            script: None,
            shell: None,
            server_id,
            batch_id: None,
            status: JobStatus::Queued,
            priority: 5,
            timeout: 0,
            exit_code: None,
            exit_signal: None,
            error: None,
            error_code: None,
            attempt: 0,
            max_retries: 0,
            worker_id: None,
            cancel_requested: false,
            created_at: crate::time::now_ms(),
            started_at: None,
            finished_at: None,
            stdout_bytes: 0,
            stderr_bytes: 0,
            truncated: false,
        }
    }
}

/// Which output stream a chunk belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn code(self) -> i64 {
        match self {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        }
    }
    pub fn from_code(c: i64) -> Option<Self> {
        match c {
            1 => Some(Stream::Stdout),
            2 => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// What the API pushes on the queue: the database is the source of truth, so
/// the message only names the job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QueuedJob {
    pub job_id: String,
    pub server_id: String,
}

/// Live status change, published by workers and the API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct JobEvent {
    pub job_id: String,
    pub status: JobStatus,
    pub exit_code: Option<i64>,
}

/// Live output chunk, published by the worker as it reads from SSH.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutputEvent {
    pub job_id: String,
    pub stream: Stream,
    /// Byte offset of this chunk within its stream.
    pub offset: i64,
    /// Length of the chunk in bytes (`data` may differ after lossy decoding).
    pub len: i64,
    /// Lossy UTF-8 of the chunk (the stored bytes stay exact).
    pub data: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn status_round_trips() {
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>().unwrap(), s);
        }
        assert!("done".parse::<JobStatus>().is_err());
        assert!(JobStatus::TimedOut.is_final());
        assert!(!JobStatus::Running.is_final());
    }
}
