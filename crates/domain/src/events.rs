//! Live events on netqueue's pub/sub: the topics, and how each event is
//! encoded into and decoded from a message's payload.

use crate::job::{JobStatus, Stream};
use serde::{Deserialize, Serialize};

/// Topic on which the API announces cancel requests (payload: job id).
pub const TOPIC_CANCEL: &str = "cancel";
/// Topic of job status changes, from workers and the API (payload: JSON [`JobEvent`]).
pub const TOPIC_STATUS: &str = "status";
/// Topic on which the API asks a worker to drain (payload: worker id).
pub const TOPIC_DRAIN: &str = "worker.drain";
/// Topic prefix for live output (`output.<job id>`, payload: JSON [`OutputEvent`]).
pub const TOPIC_OUTPUT_PREFIX: &str = "output.";

/// The topic a job's live output goes to.
pub fn output_topic(job_id: &str) -> String {
    format!("{TOPIC_OUTPUT_PREFIX}{job_id}")
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

/// One message for netqueue's PUBLISH: its topic and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
}

impl JobEvent {
    pub fn new(job_id: &str, status: JobStatus, exit_code: Option<i64>) -> JobEvent {
        JobEvent {
            job_id: job_id.to_string(),
            status,
            exit_code,
        }
    }
    pub fn message(&self) -> Message {
        Message {
            topic: TOPIC_STATUS.to_string(),
            payload: serde_json::to_vec(self).expect("a JobEvent always encodes"),
        }
    }
    /// The event in a [`TOPIC_STATUS`] payload; `None` if it is not one.
    pub fn decode(payload: &[u8]) -> Option<JobEvent> {
        serde_json::from_slice(payload).ok()
    }
}

impl OutputEvent {
    /// The event for `kept` bytes of `stream` stored from `offset` on.
    pub fn new(job_id: &str, stream: Stream, offset: i64, kept: &[u8]) -> OutputEvent {
        OutputEvent {
            job_id: job_id.to_string(),
            stream,
            offset,
            len: kept.len() as i64,
            data: String::from_utf8_lossy(kept).into_owned(),
        }
    }
    pub fn message(&self) -> Message {
        Message {
            topic: output_topic(&self.job_id),
            payload: serde_json::to_vec(self).expect("an OutputEvent always encodes"),
        }
    }
    /// The event in an output topic's payload; `None` if it is not one.
    pub fn decode(payload: &[u8]) -> Option<OutputEvent> {
        serde_json::from_slice(payload).ok()
    }
}

/// Ask the worker running `job_id` to cancel it.
pub fn cancel_message(job_id: &str) -> Message {
    Message {
        topic: TOPIC_CANCEL.to_string(),
        payload: job_id.as_bytes().to_vec(),
    }
}

/// Ask worker `worker_id` to drain.
pub fn drain_message(worker_id: &str) -> Message {
    Message {
        topic: TOPIC_DRAIN.to_string(),
        payload: worker_id.as_bytes().to_vec(),
    }
}

/// The id in a [`TOPIC_CANCEL`] or [`TOPIC_DRAIN`] payload.
pub fn decode_id(payload: &[u8]) -> String {
    String::from_utf8_lossy(payload).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_events_encode_as_today() {
        let m = JobEvent::new("j1", JobStatus::TimedOut, None).message();
        assert_eq!(m.topic, "status");
        assert_eq!(
            std::str::from_utf8(&m.payload).unwrap(),
            r#"{"job_id":"j1","status":"timed_out","exit_code":null}"#
        );
        assert_eq!(
            JobEvent::decode(&m.payload),
            Some(JobEvent::new("j1", JobStatus::TimedOut, None))
        );
        assert_eq!(JobEvent::decode(b"j1"), None);
    }

    #[test]
    fn output_events_go_to_the_jobs_topic() {
        let ev = OutputEvent::new("j1", Stream::Stderr, 7, b"a\xffb");
        assert_eq!((ev.len, ev.data.as_str()), (3, "a\u{fffd}b"));
        let m = ev.message();
        assert_eq!(m.topic, "output.j1");
        assert_eq!(
            std::str::from_utf8(&m.payload).unwrap(),
            r#"{"job_id":"j1","stream":"stderr","offset":7,"len":3,"data":"a�b"}"#
        );
        assert_eq!(OutputEvent::decode(&m.payload), Some(ev));
        assert_eq!(OutputEvent::decode(b"{}"), None);
    }

    #[test]
    fn cancel_and_drain_carry_the_bare_id() {
        let c = cancel_message("j1");
        assert_eq!(
            (c.topic.as_str(), decode_id(&c.payload).as_str()),
            ("cancel", "j1")
        );
        let d = drain_message("w1");
        assert_eq!(
            (d.topic.as_str(), decode_id(&d.payload).as_str()),
            ("worker.drain", "w1")
        );
    }
}
