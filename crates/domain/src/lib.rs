//! Domain types shared by every Remora component: jobs, servers, statuses, the
//! queue payload, and how a job's command line is built for the remote shell.

pub mod command;
pub mod job;
pub mod schedule;
pub mod server;
pub mod template;
pub mod time;

pub use job::*;
pub use server::*;

/// Name of the netqueue queue that carries jobs to workers.
pub const JOBS_QUEUE: &str = "jobs";
/// Pub/sub topic on which the API announces cancel requests (payload: job id).
pub const TOPIC_CANCEL: &str = "cancel";
/// Pub/sub topic on which workers announce job status changes (payload: JSON `JobEvent`).
pub const TOPIC_STATUS: &str = "status";
/// Pub/sub topic on which the API asks a worker to drain (payload: worker id).
pub const TOPIC_DRAIN: &str = "worker.drain";
/// Pub/sub topic prefix for live output (`output.<job id>`, payload: JSON `OutputEvent`).
pub const TOPIC_OUTPUT_PREFIX: &str = "output.";

/// Product version, reported by workers and `/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
