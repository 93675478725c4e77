//! Output sink: buffers a job's stdout and stderr and appends them to the
//! database as chunks — at least every `flush_interval`, or once
//! `flush_lines` lines (or 64 KiB) are buffered, and once more at exit.
//! Stored output stops at the per-job cap; the rest is counted and dropped,
//! so memory stays bounded whatever the job prints.

use remora_domain::Stream;
use remora_store::{OutputChunk, Store, StoreError};
use std::time::{Duration, Instant};

const MAX_BUFFER: usize = 64 * 1024;

pub struct Sink {
    job_id: String,
    store: Store,
    cap: u64,
    flush_lines: usize,
    flush_interval: Duration,
    buf: Vec<OutputChunk>,
    buffered: usize,
    lines: usize,
    oldest: Option<Instant>,
    next_seq: i64,
    stored: [i64; 2],
    pub truncated: bool,
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
            cap,
            flush_lines: flush_lines.max(1),
            flush_interval,
            buf: Vec::new(),
            buffered: 0,
            lines: 0,
            oldest: None,
            next_seq: 0,
            stored: [0, 0],
            truncated: false,
        }
    }

    fn idx(s: Stream) -> usize {
        match s {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }

    /// Bytes of `stream` accepted so far (what a live reader's offset counts).
    pub fn stored(&self, s: Stream) -> i64 {
        self.stored[Self::idx(s)]
    }

    /// Take `data`; returns the part that was kept (for live streaming) and
    /// whether a flush is due now.
    pub fn push<'a>(&mut self, stream: Stream, data: &'a [u8]) -> (&'a [u8], bool) {
        let total = (self.stored[0] + self.stored[1]) as u64;
        let room = self.cap.saturating_sub(total) as usize;
        let kept = if data.len() > room {
            self.truncated = true;
            &data[..room]
        } else {
            data
        };
        if !kept.is_empty() {
            self.stored[Self::idx(stream)] += kept.len() as i64;
            self.lines += kept.iter().filter(|&&b| b == b'\n').count();
            self.buffered += kept.len();
            self.oldest.get_or_insert_with(Instant::now);
            match self.buf.last_mut() {
                Some(last) if last.stream == stream => last.data.extend_from_slice(kept),
                _ => {
                    self.buf.push(OutputChunk {
                        seq: self.next_seq,
                        stream,
                        data: kept.to_vec(),
                    });
                    self.next_seq += 1;
                }
            }
        }
        let due = self.lines >= self.flush_lines
            || self.buffered >= MAX_BUFFER
            || (data.len() > kept.len() && !self.buf.is_empty());
        (kept, due)
    }

    /// When the time-based flush is due, if anything is buffered.
    pub fn deadline(&self) -> Option<Instant> {
        self.oldest.map(|t| t + self.flush_interval)
    }

    pub async fn flush(&mut self) -> Result<(), StoreError> {
        let chunks = std::mem::take(&mut self.buf);
        self.buffered = 0;
        self.lines = 0;
        self.oldest = None;
        self.store
            .append_output(
                &self.job_id,
                &chunks,
                self.stored[0],
                self.stored[1],
                self.truncated,
            )
            .await
    }
}
