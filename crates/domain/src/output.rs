//! Byte-offset bookkeeping of a job's output: how many bytes of each stream
//! are kept (a live chunk's offset), the stored chunks' sequence numbers,
//! and the per-job cap past which output is dropped and the job truncated.

use crate::job::Stream;

/// The writer's running account of one job's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLedger {
    cap: u64,
    kept: [i64; 2],
    next_seq: i64,
    truncated: bool,
}

/// What [`OutputLedger::accept`] kept of a piece of output.
#[derive(Debug, PartialEq, Eq)]
pub struct Accepted<'a> {
    /// Offset of `kept` within its stream.
    pub offset: i64,
    /// The prefix that fits under the cap (all of it, until the cap is hit).
    pub kept: &'a [u8],
    /// Bytes past the cap, counted and dropped.
    pub dropped: usize,
}

fn idx(s: Stream) -> usize {
    match s {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

impl OutputLedger {
    /// A ledger for a job whose stdout and stderr together keep at most
    /// `cap` bytes.
    pub fn new(cap: u64) -> OutputLedger {
        OutputLedger {
            cap,
            kept: [0, 0],
            next_seq: 0,
            truncated: false,
        }
    }

    /// Account for `data` read from `stream`.
    pub fn accept<'a>(&mut self, stream: Stream, data: &'a [u8]) -> Accepted<'a> {
        let total = (self.kept[0] + self.kept[1]) as u64;
        let room = usize::try_from(self.cap.saturating_sub(total)).unwrap_or(usize::MAX);
        let kept = if data.len() > room {
            self.truncated = true;
            &data[..room]
        } else {
            data
        };
        let offset = self.kept[idx(stream)];
        self.kept[idx(stream)] += kept.len() as i64;
        Accepted {
            offset,
            kept,
            dropped: data.len() - kept.len(),
        }
    }

    /// Bytes of `stream` kept so far.
    pub fn kept(&self, s: Stream) -> i64 {
        self.kept[idx(s)]
    }

    /// Whether any output was dropped at the cap.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The sequence number of the next stored chunk (0, 1, 2 …).
    pub fn next_seq(&mut self) -> i64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_per_stream() {
        let mut l = OutputLedger::new(100);
        assert_eq!(l.accept(Stream::Stdout, b"abc").offset, 0);
        assert_eq!(l.accept(Stream::Stderr, b"xy").offset, 0);
        let a = l.accept(Stream::Stdout, b"de");
        assert_eq!((a.offset, a.kept, a.dropped), (3, &b"de"[..], 0));
        assert_eq!((l.kept(Stream::Stdout), l.kept(Stream::Stderr)), (5, 2));
        assert!(!l.truncated());
    }

    #[test]
    fn the_cap_covers_both_streams_and_truncates() {
        let mut l = OutputLedger::new(5);
        l.accept(Stream::Stdout, b"abc");
        let a = l.accept(Stream::Stderr, b"wxyz");
        assert_eq!((a.offset, a.kept, a.dropped), (0, &b"wx"[..], 2));
        assert!(l.truncated());
        let a = l.accept(Stream::Stdout, b"more");
        assert_eq!((a.offset, a.kept, a.dropped), (3, &b""[..], 4));
        assert_eq!((l.kept(Stream::Stdout), l.kept(Stream::Stderr)), (3, 2));
        // Exactly at the cap is not truncation.
        let mut l = OutputLedger::new(3);
        assert_eq!(l.accept(Stream::Stdout, b"abc").dropped, 0);
        assert!(!l.truncated());
        assert_eq!(l.accept(Stream::Stdout, b"").dropped, 0);
        assert!(!l.truncated());
    }

    #[test]
    fn sequence_numbers_count_up_from_zero() {
        let mut l = OutputLedger::new(0);
        assert_eq!([l.next_seq(), l.next_seq(), l.next_seq()], [0, 1, 2]);
    }
}
