//! Jobs: kinds, the status lifecycle and the shapes the API returns.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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

/// What a job runs. On the wire (API JSON, OpenAPI) and in the database a
/// spec is the flat [`JobSpecFields`]: `kind`, `command`, `args`, `script`,
/// `shell`, the ones a kind does not use `null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobSpec {
    /// `command` is shell text; each of `args` is quoted and appended.
    Command { command: String, args: Vec<String> },
    /// `script` goes to `<shell> -s -- args` on stdin.
    Script {
        script: String,
        args: Vec<String>,
        shell: String,
    },
}

/// The shell a script job runs under when none is stored.
pub const DEFAULT_SHELL: &str = "/bin/bash";

impl JobSpec {
    pub fn kind(&self) -> JobKind {
        match self {
            JobSpec::Command { .. } => JobKind::Command,
            JobSpec::Script { .. } => JobKind::Script,
        }
    }
    pub fn args(&self) -> &[String] {
        match self {
            JobSpec::Command { args, .. } | JobSpec::Script { args, .. } => args,
        }
    }
    /// The same spec with `args` instead of its own.
    pub fn with_args(mut self, new: Vec<String>) -> JobSpec {
        match &mut self {
            JobSpec::Command { args, .. } | JobSpec::Script { args, .. } => *args = new,
        }
        self
    }
}

/// The flat form of a [`JobSpec`]: the API's JSON fields and the `jobs`
/// table's columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpecFields {
    pub kind: JobKind,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub script: Option<String>,
    pub shell: Option<String>,
}

impl From<JobSpec> for JobSpecFields {
    fn from(s: JobSpec) -> Self {
        match s {
            JobSpec::Command { command, args } => JobSpecFields {
                kind: JobKind::Command,
                command: Some(command),
                args,
                script: None,
                shell: None,
            },
            JobSpec::Script {
                script,
                args,
                shell,
            } => JobSpecFields {
                kind: JobKind::Script,
                command: None,
                args,
                script: Some(script),
                shell: Some(shell),
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("a {kind} job without `{field}`")]
pub struct IncompleteSpec {
    pub kind: &'static str,
    pub field: &'static str,
}

impl TryFrom<JobSpecFields> for JobSpec {
    type Error = IncompleteSpec;
    /// A command job needs `command` and a script job `script`; a script job
    /// without `shell` runs under [`DEFAULT_SHELL`]. Fields the kind does not
    /// use are ignored.
    fn try_from(f: JobSpecFields) -> Result<Self, Self::Error> {
        let missing = |field| IncompleteSpec {
            kind: f.kind.as_str(),
            field,
        };
        Ok(match f.kind {
            JobKind::Command => JobSpec::Command {
                command: f.command.ok_or_else(|| missing("command"))?,
                args: f.args,
            },
            JobKind::Script => JobSpec::Script {
                script: f.script.ok_or_else(|| missing("script"))?,
                shell: f.shell.unwrap_or_else(|| DEFAULT_SHELL.to_string()),
                args: f.args,
            },
        })
    }
}

/// A job as stored and as returned by the API (never with output bodies).
/// Its JSON and OpenAPI schema are [`JobWire`]'s: the spec's fields flat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "JobWire", try_from = "JobWire")]
pub struct Job {
    pub id: String,
    pub spec: JobSpec,
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
    /// A stable machine code for failures, one of [`crate::ErrorCode`]'s strings.
    pub error_code: Option<String>,
    pub attempt: i64,
    pub max_retries: i64,
    pub worker_id: Option<String>,
    pub cancel_requested: bool,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub stdout_bytes: i64,
    pub stderr_bytes: i64,
    pub truncated: bool,
    /// The template this job was created from, if any.
    pub template_id: Option<String>,
    /// The template's version the job ran.
    pub template_version: Option<i64>,
    /// The schedule that fired it, if any.
    pub schedule_id: Option<String>,
    /// How it runs on the host: pty, become, env.
    pub options: JobOptions,
}

/// A job's execution options (docs/jobs.md "pty, become and env").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOptions {
    /// Run on a pseudo-terminal (command jobs only); stdout and stderr arrive merged as stdout.
    pub pty: bool,
    /// Run under `sudo -u <become_user>`.
    pub sudo: bool,
    /// The user `become` switches to; `None` is root.
    pub become_user: Option<String>,
    /// Environment variables exported before the job runs, names `[A-Za-z_][A-Za-z0-9_]*`.
    pub env: BTreeMap<String, String>,
}

impl JobOptions {
    /// The user a `become` job runs as.
    pub fn become_user(&self) -> &str {
        self.become_user.as_deref().unwrap_or("root")
    }
}

// The JSON form of a [`Job`], published in OpenAPI as `Job`; its doc line is
// the schema's description.
/// A job as stored and as returned by the API (never with output bodies).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[schema(as = Job)]
pub struct JobWire {
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
    /// Runs on a pseudo-terminal; stdout and stderr are merged (stdout).
    #[serde(default)]
    pub pty: bool,
    /// Runs under sudo as `become_user`.
    #[serde(default, rename = "become")]
    pub sudo: bool,
    /// The user a `become` job runs as (root when null).
    #[serde(default)]
    pub become_user: Option<String>,
    /// Environment variables the job gets (names `[A-Za-z_][A-Za-z0-9_]*`); not for secrets
    /// (they are stored and returned as given: use a template's secret parameter).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The template this job was created from (null for ad-hoc jobs).
    #[serde(default)]
    pub template_id: Option<String>,
    /// The version of that template the job ran (every template edit makes a new version).
    #[serde(default)]
    pub template_version: Option<i64>,
    /// The schedule that fired the job (null unless a schedule created it).
    #[serde(default)]
    pub schedule_id: Option<String>,
}

impl From<Job> for JobWire {
    fn from(j: Job) -> Self {
        let f = JobSpecFields::from(j.spec);
        JobWire {
            id: j.id,
            kind: f.kind,
            command: f.command,
            args: f.args,
            script: f.script,
            shell: f.shell,
            server_id: j.server_id,
            batch_id: j.batch_id,
            status: j.status,
            priority: j.priority,
            timeout: j.timeout,
            exit_code: j.exit_code,
            exit_signal: j.exit_signal,
            error: j.error,
            error_code: j.error_code,
            attempt: j.attempt,
            max_retries: j.max_retries,
            worker_id: j.worker_id,
            cancel_requested: j.cancel_requested,
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
            stdout_bytes: j.stdout_bytes,
            stderr_bytes: j.stderr_bytes,
            truncated: j.truncated,
            pty: j.options.pty,
            sudo: j.options.sudo,
            become_user: j.options.become_user,
            env: j.options.env,
            template_id: j.template_id,
            template_version: j.template_version,
            schedule_id: j.schedule_id,
        }
    }
}

impl TryFrom<JobWire> for Job {
    type Error = IncompleteSpec;
    fn try_from(w: JobWire) -> Result<Self, Self::Error> {
        let spec = JobSpec::try_from(JobSpecFields {
            kind: w.kind,
            command: w.command,
            args: w.args,
            script: w.script,
            shell: w.shell,
        })?;
        Ok(Job {
            id: w.id,
            spec,
            server_id: w.server_id,
            batch_id: w.batch_id,
            status: w.status,
            priority: w.priority,
            timeout: w.timeout,
            exit_code: w.exit_code,
            exit_signal: w.exit_signal,
            error: w.error,
            error_code: w.error_code,
            attempt: w.attempt,
            max_retries: w.max_retries,
            worker_id: w.worker_id,
            cancel_requested: w.cancel_requested,
            created_at: w.created_at,
            started_at: w.started_at,
            finished_at: w.finished_at,
            stdout_bytes: w.stdout_bytes,
            stderr_bytes: w.stderr_bytes,
            truncated: w.truncated,
            options: JobOptions {
                pty: w.pty,
                sudo: w.sudo,
                become_user: w.become_user,
                env: w.env,
            },
            template_id: w.template_id,
            template_version: w.template_version,
            schedule_id: w.schedule_id,
        })
    }
}

impl utoipa::PartialSchema for Job {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <JobWire as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for Job {
    fn name() -> std::borrow::Cow<'static, str> {
        <JobWire as utoipa::ToSchema>::name()
    }
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <JobWire as utoipa::ToSchema>::schemas(schemas)
    }
}

impl Job {
    /// A new `queued` job running `spec` on `server_id`, created now, with
    /// no run state.
    pub fn queued(spec: JobSpec, server_id: String) -> Job {
        Job {
            id: crate::new_id(),
            spec,
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
            options: JobOptions::default(),
            template_id: None,
            template_version: None,
            schedule_id: None,
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

    /// Today's JSON of a command and a script job, nulls included, reads
    /// into a typed spec and writes back byte for byte.
    #[test]
    fn job_json_round_trips_unchanged() {
        let command = r#"{"id":"j1","kind":"command","command":"echo hi","args":["a b"],"script":null,"shell":null,"server_id":"s1","batch_id":null,"status":"failed","priority":5,"timeout":0,"exit_code":3,"exit_signal":null,"error":"exited with code 3","error_code":"exit_nonzero","attempt":1,"max_retries":0,"worker_id":"w1","cancel_requested":false,"created_at":"2026-11-30T10:00:00Z","started_at":"2026-11-30T10:00:01.5Z","finished_at":null,"stdout_bytes":3,"stderr_bytes":0,"truncated":false,"pty":false,"become":false,"become_user":null,"env":{},"template_id":null,"template_version":null,"schedule_id":null}"#;
        let script = r#"{"id":"j2","kind":"script","command":null,"args":[],"script":"echo $1","shell":"/bin/sh","server_id":"s1","batch_id":"b1","status":"queued","priority":1,"timeout":30,"exit_code":null,"exit_signal":null,"error":null,"error_code":null,"attempt":0,"max_retries":2,"worker_id":null,"cancel_requested":true,"created_at":"2026-11-30T10:00:00Z","started_at":null,"finished_at":null,"stdout_bytes":0,"stderr_bytes":0,"truncated":true,"pty":true,"become":true,"become_user":"deploy","env":{"A":"x'y"},"template_id":"t1","template_version":3,"schedule_id":"sc1"}"#;
        for text in [command, script] {
            let job: Job = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&job).unwrap(), text);
        }
        // JSON from before the options (issue 11) still reads, with none set.
        let old = command.replace(
            r#","pty":false,"become":false,"become_user":null,"env":{},"template_id":null,"template_version":null,"schedule_id":null"#,
            "",
        );
        assert_eq!(
            serde_json::from_str::<Job>(&old).unwrap().options,
            JobOptions::default()
        );
        let job: Job = serde_json::from_str(script).unwrap();
        assert_eq!(job.options.become_user(), "deploy");
        assert!(job.options.sudo && job.options.pty);
        // JSON from before jobs carried their origin still reads (the fields are null).
        let old = command.replace(
            r#","template_id":null,"template_version":null,"schedule_id":null"#,
            "",
        );
        let job: Job = serde_json::from_str(&old).unwrap();
        assert_eq!((job.template_id, job.template_version), (None, None));
        let job: Job = serde_json::from_str(command).unwrap();
        assert_eq!(
            job.spec,
            JobSpec::Command {
                command: "echo hi".into(),
                args: vec!["a b".into()]
            }
        );
        let job: Job = serde_json::from_str(script).unwrap();
        assert_eq!(
            job.spec,
            JobSpec::Script {
                script: "echo $1".into(),
                args: vec![],
                shell: "/bin/sh".into()
            }
        );
    }

    #[test]
    fn spec_fields_need_the_kinds_text() {
        let f = |kind, command: Option<&str>, script: Option<&str>, shell: Option<&str>| {
            JobSpec::try_from(JobSpecFields {
                kind,
                command: command.map(Into::into),
                args: vec!["x".into()],
                script: script.map(Into::into),
                shell: shell.map(Into::into),
            })
        };
        let e = f(JobKind::Command, None, Some("s"), None).unwrap_err();
        assert_eq!(e.to_string(), "a command job without `command`");
        let e = f(JobKind::Script, Some("c"), None, None).unwrap_err();
        assert_eq!(e.to_string(), "a script job without `script`");
        assert_eq!(
            f(JobKind::Script, None, Some("s"), None).unwrap(),
            JobSpec::Script {
                script: "s".into(),
                args: vec!["x".into()],
                shell: DEFAULT_SHELL.into()
            }
        );
        let spec = f(JobKind::Command, Some("c"), None, None).unwrap();
        assert_eq!(spec.kind(), JobKind::Command);
        assert_eq!(spec.args(), ["x"]);
        assert_eq!(spec.clone().with_args(vec![]).args(), [] as [String; 0]);
        let back = JobSpecFields::from(spec);
        assert_eq!(
            (back.command.as_deref(), back.script, back.shell),
            (Some("c"), None, None)
        );
    }
}
