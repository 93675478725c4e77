//! NetQueue: Remora's durable, leased, priority job queue over framed TCP, plus low-latency
//! fire-and-forget pub/sub. `server::run` serves it; `client::Client` talks to it.
//! The wire protocol is specified in `docs/netqueue-protocol.md`.

mod backoff;
pub mod client;
pub mod exposure;
mod log;
pub mod metrics;
pub mod protocol;
mod pubsub;
mod queue;
pub mod server;
mod wire;

pub use backoff::Backoff;
pub use client::{Client, ClientConfig, ClientError, Push, Subscription};
pub use protocol::{Delivery, ErrorCode, Event, PushOutcome, PROTOCOL_VERSION};
pub use queue::{AffinityStats, QueueStats, ServerStats, Stats};
pub use server::{run, FsyncPolicy, ServerConfig, ServerError};
