//! Output sink: buffers a job's stdout and stderr and appends them to the
//! database as chunks — at least every `flush_interval`, or once
//! `flush_lines` lines (or 64 KiB) are buffered; what is left at exit goes
//! with the final status ([`Sink::into_pending`]).
//! Offsets, sequence numbers and the per-job cap are the domain's
//! [`OutputLedger`]: past the cap output is counted and dropped, so memory
//! stays bounded whatever the job prints.

use remora_domain::output::{Accepted, OutputLedger};
use remora_domain::Stream;
use remora_store::{OutputChunk, PendingOutput, Store, StoreError};
use std::time::{Duration, Instant};

const MAX_BUFFER: usize = 64 * 1024;

pub struct Sink {
    job_id: String,
    store: Store,
    ledger: OutputLedger,
    flush_lines: usize,
    flush_interval: Duration,
    buf: Vec<OutputChunk>,
    buffered: usize,
    lines: usize,
    oldest: Option<Instant>,
    /// The last flush failed: its chunks are buffered again and the next
    /// try waits for the time-based deadline (not every push).
    failing: bool,
}

impl Sink {
    pub fn new(
        job_id: &str,
        store: Store,
        cap: u64,
        flush_lines: usize,
        flush_interval: Duration,
    ) -> Sink {
        Sink {
            job_id: job_id.to_string(),
            store,
            ledger: OutputLedger::new(cap),
            flush_lines: flush_lines.max(1),
            flush_interval,
            buf: Vec::new(),
            buffered: 0,
            lines: 0,
            oldest: None,
            failing: false,
        }
    }

    /// Take `data`; returns what was kept (with its offset, for live
    /// streaming) and whether a flush is due now.
    pub fn push<'a>(&mut self, stream: Stream, data: &'a [u8]) -> (Accepted<'a>, bool) {
        let a = self.ledger.accept(stream, data);
        if !a.kept.is_empty() {
            self.lines += a.kept.iter().filter(|&&b| b == b'\n').count();
            self.buffered += a.kept.len();
            self.oldest.get_or_insert_with(Instant::now);
            match self.buf.last_mut() {
                Some(last) if last.stream == stream => last.data.extend_from_slice(a.kept),
                _ => {
                    let seq = self.ledger.next_seq();
                    self.buf.push(OutputChunk {
                        seq,
                        stream,
                        data: a.kept.to_vec(),
                    });
                }
            }
        }
        let due = !self.failing
            && (self.lines >= self.flush_lines
                || self.buffered >= MAX_BUFFER
                || (a.dropped > 0 && !self.buf.is_empty()));
        (a, due)
    }

    /// When the time-based flush is due, if anything is buffered.
    pub fn deadline(&self) -> Option<Instant> {
        self.oldest.map(|t| t + self.flush_interval)
    }

    /// What is still buffered and the byte counters, for the final status to store in its own
    /// transaction (`Store::finish_job_with_output`) instead of a last flush before it.
    pub fn into_pending(self) -> PendingOutput {
        PendingOutput {
            stdout_bytes: self.ledger.kept(Stream::Stdout),
            stderr_bytes: self.ledger.kept(Stream::Stderr),
            truncated: self.ledger.truncated(),
            chunks: self.buf,
        }
    }

    /// Store the buffered chunks and the byte counters in one transaction.
    /// On failure nothing was stored: the chunks stay buffered (same
    /// sequence numbers, later output appended to them) and go with the
    /// next flush, so output is neither lost nor renumbered and the counters
    /// never run ahead of the stored chunks.
    pub async fn flush(&mut self) -> Result<(), StoreError> {
        let res = self
            .store
            .append_output(
                &self.job_id,
                &self.buf,
                self.ledger.kept(Stream::Stdout),
                self.ledger.kept(Stream::Stderr),
                self.ledger.truncated(),
            )
            .await;
        match res {
            Ok(()) => {
                self.buf.clear();
                self.buffered = 0;
                self.lines = 0;
                self.oldest = None;
                self.failing = false;
            }
            Err(_) => {
                self.failing = true;
                self.oldest = Some(Instant::now());
            }
        }
        res
    }
}
