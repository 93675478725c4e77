//! The append-only segmented log that makes the broker durable.
//!
//! A data directory holds segments `NNNNNNNNNNNNNNNNNNNN.log`. Each starts with a 16-byte header
//! (magic, kind) followed by records `[u32 len][u32 crc32c(len ‖ body)][body]`. A *snapshot*
//! segment (written by compaction to a temporary name, fsynced, then renamed) starts with a
//! `Reset` record and the live state; replay starts at the newest snapshot segment. Replay stops
//! at the first record that is torn, fails its checksum or does not decode, truncates the file
//! there and deletes later segments, so what is replayed is always a prefix of what was written.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::time::Instant;

use crate::queue::{Broker, Record};
use crate::wire::{DecodeError, Reader, WriteExt};

const MAGIC: &[u8; 8] = b"RMQLOG\0\x01";
const HEADER_LEN: usize = 16;
const KIND_PLAIN: u8 = 0;
const KIND_SNAPSHOT: u8 = 1;
const RECORD_HEADER: usize = 8;
/// No record may claim more than this; anything larger is corruption.
const MAX_RECORD: usize = 256 * 1024 * 1024;

mod tag {
    pub const RESET: u8 = 1;
    pub const PUSH: u8 = 2;
    pub const REMOVE: u8 = 3;
    pub const LEASE: u8 = 4;
    pub const REQUEUE: u8 = 5;
    pub const DEAD: u8 = 6;
}

/// When the log is fsynced, and so what a PUSH acknowledgement promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Acknowledge only after the record is on stable storage (group commit across pushers).
    #[default]
    Always,
    /// Acknowledge after write(2); fsync at most this often.
    Interval(Duration),
    /// Acknowledge after write(2); leave flushing to the OS.
    Never,
}

impl FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "never" => Ok(FsyncPolicy::Never),
            _ => match s
                .strip_prefix("interval:")
                .map(|ms| ms.trim_end_matches("ms").parse::<u64>())
            {
                Some(Ok(ms)) if ms > 0 => Ok(FsyncPolicy::Interval(Duration::from_millis(ms))),
                _ => Err(format!(
                    "invalid fsync policy {s:?}: expected always, never or interval:<ms>"
                )),
            },
        }
    }
}

impl std::fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FsyncPolicy::Always => f.write_str("always"),
            FsyncPolicy::Never => f.write_str("never"),
            FsyncPolicy::Interval(d) => write!(f, "interval:{}", d.as_millis()),
        }
    }
}

/// Maps broker instants to wall-clock milliseconds and back, so delays survive restarts.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    instant: Instant,
    wall_ms: u64,
}

impl Clock {
    pub fn now() -> Self {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self {
            instant: Instant::now(),
            wall_ms,
        }
    }

    fn to_wall(self, t: Option<Instant>) -> u64 {
        match t {
            None => 0,
            Some(t) if t <= self.instant => self.wall_ms.max(1),
            Some(t) => self.wall_ms + (t - self.instant).as_millis() as u64,
        }
    }

    fn instant_of(self, ms: u64) -> Option<Instant> {
        (ms > self.wall_ms).then(|| self.instant + Duration::from_millis(ms - self.wall_ms))
    }
}

/// Appends one framed record to `out`.
pub fn encode_record(out: &mut BytesMut, r: &Record, clock: Clock) {
    let start = out.len();
    out.put_u64(0); // len + crc, patched below
    match r {
        Record::Reset => out.put_u8(tag::RESET),
        Record::Push {
            queue,
            id,
            priority,
            attempt,
            ready_at,
            payload,
        } => {
            out.put_u8(tag::PUSH);
            out.put_str(queue);
            out.put_str(id);
            out.put_u8(*priority);
            out.put_u32(*attempt);
            out.put_u64(clock.to_wall(*ready_at));
            out.put_blob(payload);
        }
        Record::Remove { queue, id } => {
            out.put_u8(tag::REMOVE);
            out.put_str(queue);
            out.put_str(id);
        }
        Record::Lease { queue, id, attempt } => {
            out.put_u8(tag::LEASE);
            out.put_str(queue);
            out.put_str(id);
            out.put_u32(*attempt);
        }
        Record::Requeue {
            queue,
            id,
            ready_at,
        } => {
            out.put_u8(tag::REQUEUE);
            out.put_str(queue);
            out.put_str(id);
            out.put_u64(clock.to_wall(*ready_at));
        }
        Record::Dead { queue, id } => {
            out.put_u8(tag::DEAD);
            out.put_str(queue);
            out.put_str(id);
        }
    }
    let len = (out.len() - start - RECORD_HEADER) as u32;
    let len_be = len.to_be_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len_be), &out[start + RECORD_HEADER..]);
    out[start..start + 4].copy_from_slice(&len_be);
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

/// Decodes a record body (checksum already verified). Payloads are copied so a replayed message
/// does not pin its whole segment in memory.
pub fn decode_record(body: Bytes, clock: Clock) -> Result<Record, DecodeError> {
    let mut r = Reader::new(body);
    let rec = match r.u8()? {
        tag::RESET => Record::Reset,
        tag::PUSH => Record::Push {
            queue: r.str()?,
            id: r.str()?,
            priority: r.u8()?,
            attempt: r.u32()?,
            ready_at: clock.instant_of(r.u64()?),
            payload: Bytes::copy_from_slice(&r.bytes()?),
        },
        tag::REMOVE => Record::Remove {
            queue: r.str()?,
            id: r.str()?,
        },
        tag::LEASE => Record::Lease {
            queue: r.str()?,
            id: r.str()?,
            attempt: r.u32()?,
        },
        tag::REQUEUE => Record::Requeue {
            queue: r.str()?,
            id: r.str()?,
            ready_at: clock.instant_of(r.u64()?),
        },
        tag::DEAD => Record::Dead {
            queue: r.str()?,
            id: r.str()?,
        },
        _ => return Err(DecodeError("unknown record tag")),
    };
    r.finish()?;
    Ok(rec)
}

/// Parses records from a segment's contents (after the header). Returns them and the length of
/// the valid prefix; parsing stops at the first torn or corrupt record.
pub fn parse_records(data: &[u8], clock: Clock) -> (Vec<Record>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while data.len() - pos >= RECORD_HEADER {
        let len =
            u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        let crc = u32::from_be_bytes([data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]]);
        // A zero-filled tail has len 0: every real record has at least its tag byte.
        if len == 0 || len > MAX_RECORD || data.len() - pos - RECORD_HEADER < len {
            break;
        }
        let body = &data[pos + RECORD_HEADER..pos + RECORD_HEADER + len];
        if crc32c::crc32c_append(crc32c::crc32c(&data[pos..pos + 4]), body) != crc {
            break;
        }
        match decode_record(Bytes::copy_from_slice(body), clock) {
            Ok(r) => out.push(r),
            Err(_) => break,
        }
        pos += RECORD_HEADER + len;
    }
    (out, pos)
}

/// Tunables of the log.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub fsync: FsyncPolicy,
    /// Start a new segment once the current one reaches this size.
    pub segment_bytes: u64,
    /// Compact once the log is at least this big and more than twice the live data.
    pub compact_min_bytes: u64,
}

/// What replay found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    pub segments: usize,
    pub records: usize,
    /// Bytes cut off a torn or corrupt tail (including deleted later segments).
    pub truncated_bytes: u64,
}

/// The open log: owned by the writer thread.
pub struct Log {
    dir: PathBuf,
    opts: LogOptions,
    segment: u64,
    file: File,
    segment_len: u64,
    /// Bytes in all segments since the newest snapshot.
    total_len: u64,
    /// Written but not yet fsynced.
    dirty: bool,
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:020}.log"))
}

fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp") {
            // An interrupted compaction: the rename never happened, so it is not part of the log.
            let _ = fs::remove_file(entry.path());
            continue;
        }
        if let Some(n) = name
            .strip_suffix(".log")
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn header(kind: u8) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8] = kind;
    h
}

fn read_kind(data: &[u8]) -> Option<u8> {
    (data.len() >= HEADER_LEN && &data[..8] == MAGIC && data[8] <= KIND_SNAPSHOT).then(|| data[8])
}

impl Log {
    /// Opens (creating if needed) the log in `dir` and replays it into `broker`.
    pub fn open(
        dir: &Path,
        opts: LogOptions,
        broker: &mut Broker,
    ) -> io::Result<(Log, ReplayReport)> {
        fs::create_dir_all(dir)?;
        let clock = Clock::now();
        let mut report = ReplayReport::default();
        let mut segments = list_segments(dir)?;

        // Start at the newest snapshot: everything before it is superseded.
        let mut start = 0;
        for (i, &n) in segments.iter().enumerate() {
            let mut h = [0u8; HEADER_LEN];
            let ok = File::open(segment_path(dir, n))
                .and_then(|mut f| f.read_exact(&mut h))
                .is_ok();
            if ok && read_kind(&h) == Some(KIND_SNAPSHOT) {
                start = i;
            }
        }
        for &n in &segments[..start] {
            fs::remove_file(segment_path(dir, n))?;
        }
        segments.drain(..start);

        let mut total_len = 0u64;
        let mut kept = Vec::new();
        let mut cut = false;
        for &n in &segments {
            let path = segment_path(dir, n);
            if cut {
                report.truncated_bytes += fs::metadata(&path)?.len();
                fs::remove_file(&path)?;
                continue;
            }
            let data = fs::read(&path)?;
            if read_kind(&data).is_none() {
                report.truncated_bytes += data.len() as u64;
                fs::remove_file(&path)?;
                cut = true;
                continue;
            }
            let (records, valid) = parse_records(&data[HEADER_LEN..], clock);
            report.records += records.len();
            let now = Instant::now();
            for r in records {
                broker.apply(r, now);
            }
            let valid_len = (HEADER_LEN + valid) as u64;
            if valid_len < data.len() as u64 {
                report.truncated_bytes += data.len() as u64 - valid_len;
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(valid_len)?;
                f.sync_all()?;
                cut = true;
            }
            total_len += valid_len;
            kept.push(n);
        }
        report.segments = kept.len();
        if cut {
            sync_dir(dir)?;
        }
        // Replayed state carries no journal: it is already on disk.
        let _ = broker.take_journal();

        let (segment, file, segment_len) = match kept.last() {
            Some(&n) => {
                let mut f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(segment_path(dir, n))?;
                let len = f.seek(SeekFrom::End(0))?;
                (n, f, len)
            }
            None => {
                let f = Self::create_segment(dir, 1, KIND_PLAIN)?;
                total_len = HEADER_LEN as u64;
                (1, f, HEADER_LEN as u64)
            }
        };
        let log = Log {
            dir: dir.to_owned(),
            opts,
            segment,
            file,
            segment_len,
            total_len,
            dirty: false,
        };
        Ok((log, report))
    }

    fn create_segment(dir: &Path, n: u64, kind: u8) -> io::Result<File> {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(segment_path(dir, n))?;
        f.write_all(&header(kind))?;
        f.sync_all()?;
        sync_dir(dir)?;
        Ok(f)
    }

    pub fn options(&self) -> &LogOptions {
        &self.opts
    }

    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    /// Writes encoded records, starting a new segment first if the current one is full.
    pub fn append(&mut self, encoded: &[u8]) -> io::Result<()> {
        if encoded.is_empty() {
            return Ok(());
        }
        if self.segment_len >= self.opts.segment_bytes {
            // Seal the old segment durably so segment order is also durability order.
            if self.opts.fsync != FsyncPolicy::Never {
                self.file.sync_data()?;
            }
            let n = self.segment + 1;
            self.file = Self::create_segment(&self.dir, n, KIND_PLAIN)?;
            self.segment = n;
            self.segment_len = HEADER_LEN as u64;
            self.total_len += HEADER_LEN as u64;
        }
        self.file.write_all(encoded)?;
        self.segment_len += encoded.len() as u64;
        self.total_len += encoded.len() as u64;
        self.dirty = true;
        Ok(())
    }

    pub fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Whether the log has grown enough past the live data to be worth compacting.
    pub fn wants_compaction(&self, live_bytes: usize) -> bool {
        self.total_len >= self.opts.compact_min_bytes && self.total_len > 2 * live_bytes as u64
    }

    /// Replaces the whole log with `snapshot` (which must start with `Record::Reset`): written to
    /// a temporary file, fsynced, renamed into place, then older segments are deleted. A crash at
    /// any point leaves either the old log or the new snapshot segment as the replay start.
    pub fn compact(&mut self, snapshot: &[Record]) -> io::Result<()> {
        let n = self.segment + 1;
        let tmp = self.dir.join(format!("{n:020}.log.tmp"));
        let r = self.compact_into(snapshot, n, &tmp);
        if r.is_err() {
            // A half-written snapshot is not part of the log; free its space for the retry.
            let _ = fs::remove_file(&tmp);
        }
        r
    }

    fn compact_into(&mut self, snapshot: &[Record], n: u64, tmp: &Path) -> io::Result<()> {
        let clock = Clock::now();
        let mut buf = BytesMut::with_capacity(64 * 1024);
        buf.put_slice(&header(KIND_SNAPSHOT));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp)?;
        for r in snapshot {
            encode_record(&mut buf, r, clock);
            if buf.len() >= 1 << 20 {
                f.write_all(&buf)?;
                buf.clear();
            }
        }
        f.write_all(&buf)?;
        f.sync_all()?;
        let len = f.stream_position()?;
        drop(f);
        fs::rename(tmp, segment_path(&self.dir, n))?;
        sync_dir(&self.dir)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(segment_path(&self.dir, n))?;
        for old in list_segments(&self.dir)? {
            if old < n {
                fs::remove_file(segment_path(&self.dir, old))?;
            }
        }
        let mut file = file;
        file.seek(SeekFrom::End(0))?;
        self.file = file;
        self.segment = n;
        self.segment_len = len;
        self.total_len = len;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Limits;

    fn rec(i: u32) -> Record {
        Record::Push {
            queue: "q".into(),
            id: format!("m{i}"),
            priority: 5,
            attempt: 0,
            ready_at: None,
            payload: Bytes::from(vec![b'x'; 20 + i as usize]),
        }
    }

    #[test]
    fn fsync_policy_parses() {
        assert_eq!("always".parse(), Ok(FsyncPolicy::Always));
        assert_eq!("never".parse(), Ok(FsyncPolicy::Never));
        assert_eq!(
            "interval:5".parse(),
            Ok(FsyncPolicy::Interval(Duration::from_millis(5)))
        );
        assert_eq!(
            "interval:5ms".parse(),
            Ok(FsyncPolicy::Interval(Duration::from_millis(5)))
        );
        assert!("interval:0".parse::<FsyncPolicy>().is_err());
        assert!("sometimes".parse::<FsyncPolicy>().is_err());
        assert_eq!(
            FsyncPolicy::Interval(Duration::from_millis(7)).to_string(),
            "interval:7"
        );
    }

    #[tokio::test]
    async fn every_truncation_and_bit_flip_yields_a_valid_prefix() {
        let clock = Clock::now();
        let mut buf = BytesMut::new();
        let mut ends = vec![0];
        for i in 0..4 {
            encode_record(&mut buf, &rec(i), clock);
            ends.push(buf.len());
        }
        let (all, len) = parse_records(&buf, clock);
        assert_eq!((all.len(), len), (4, buf.len()));
        for cut in 0..buf.len() {
            let (got, valid) = parse_records(&buf[..cut], clock);
            let complete = ends.iter().filter(|&&e| e <= cut).count() - 1;
            assert_eq!(got.len(), complete, "cut at {cut}");
            assert_eq!(got[..], all[..complete]);
            assert_eq!(valid, ends[complete]);
        }
        for byte in 0..buf.len() {
            let mut bad = buf.to_vec();
            bad[byte] ^= 0x20;
            let (got, _) = parse_records(&bad, clock);
            let hit = ends.iter().filter(|&&e| e <= byte).count() - 1;
            assert_eq!(got[..], all[..hit], "flip at {byte}");
        }
        let zeros = vec![0u8; 64];
        assert_eq!(parse_records(&zeros, clock).0.len(), 0);
    }

    fn opts(segment_bytes: u64) -> LogOptions {
        LogOptions {
            fsync: FsyncPolicy::Always,
            segment_bytes,
            compact_min_bytes: 0,
        }
    }

    fn fresh() -> Broker {
        Broker::new(Limits::default(), 1, true)
    }

    #[tokio::test]
    async fn segments_rotate_replay_and_compact() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, report) = Log::open(dir.path(), opts(200), &mut fresh()).unwrap();
        assert_eq!(report.records, 0);
        let clock = Clock::now();
        for i in 0..20 {
            let mut b = BytesMut::new();
            encode_record(&mut b, &rec(i), clock);
            log.append(&b).unwrap();
        }
        let mut b = BytesMut::new();
        encode_record(
            &mut b,
            &Record::Remove {
                queue: "q".into(),
                id: "m3".into(),
            },
            clock,
        );
        log.append(&b).unwrap();
        log.sync().unwrap();
        drop(log);
        assert!(list_segments(dir.path()).unwrap().len() > 3);

        let mut broker = fresh();
        let (mut log, report) = Log::open(dir.path(), opts(200), &mut broker).unwrap();
        assert_eq!((report.records, report.truncated_bytes), (21, 0));
        assert_eq!(broker.stats().queues["q"].total, 19);

        log.compact(&broker.snapshot()).unwrap();
        assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
        drop(log);
        let mut again = fresh();
        let (_, report) = Log::open(dir.path(), opts(200), &mut again).unwrap();
        assert_eq!(report.records, 20, "reset + 19 pushes");
        assert_eq!(again.stats().queues["q"].total, 19);
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any bytes parse without panicking; whatever parses re-encodes to exactly the valid prefix.
        #[test]
        fn parse_records_never_panics_and_is_prefix_exact(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let clock = Clock::now();
            let (records, valid) = parse_records(&data, clock);
            prop_assert!(valid <= data.len());
            let mut again = BytesMut::new();
            for r in &records {
                encode_record(&mut again, r, clock);
            }
            prop_assert_eq!(again.len(), valid);
        }
    }
}
