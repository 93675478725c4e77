//! Domain types shared by every Remora component: jobs, servers, statuses, the
//! queue payload, and how a job's command line is built for the remote shell.

pub mod batch;
pub mod command;
pub mod error_code;
pub mod events;
pub mod job;
pub mod mask;
pub mod output;
pub mod schedule;
pub mod server;
pub mod template;
pub mod time;

pub use error_code::ErrorCode;
pub use events::{
    JobEvent, OutputEvent, TOPIC_CANCEL, TOPIC_DRAIN, TOPIC_OUTPUT_PREFIX, TOPIC_STATUS,
};
pub use job::*;
pub use server::*;

/// Name of the netqueue queue that carries jobs to workers.
pub const JOBS_QUEUE: &str = "jobs";
/// Product version, reported by workers and `/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
