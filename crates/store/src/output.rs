//! Job output: the stdout/stderr chunks a job wrote, stored bytes-exact in order.
//!
//! # Packed output of finished jobs
//! While a job runs its output is appended as rows of `job_output`, one per
//! chunk. Once it is final, [`Store::pack_finished_output`] (run by the
//! maintenance task) replaces those rows with one row of `job_output_packed`:
//! the chunks as records (`seq` i64 BE, stream u8, length u32 BE, bytes)
//! compressed with zstd. Every reader goes through [`Store::output_chunks`],
//! which reads the rows first and the packed records second and merges them
//! by `seq`, so a reader racing the packing transaction sees each chunk once
//! and never none: the bytes are the same before and after.

use crate::sql::{Arg, Conn, Row};
use crate::{map_unique, Result, Store, StoreError};
use remora_domain::Stream;
use sqlx::Row as _;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    pub seq: i64,
    pub stream: Stream,
    pub data: Vec<u8>,
}

/// What a job's final status carries of its output: the chunks its sink still buffers (none is
/// fine) and the byte counters as of them, stored in the final status's transaction
/// (`Store::finish_job_with_output`) instead of a flush of their own just before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingOutput {
    pub chunks: Vec<OutputChunk>,
    pub stdout_bytes: i64,
    pub stderr_bytes: i64,
    pub truncated: bool,
}

/// The codec name stored with packed output.
pub const CODEC_ZSTD: &str = "zstd-records-v1";

/// How finished jobs' output is packed.
#[derive(Debug, Clone, Copy)]
pub struct PackOptions {
    /// zstd level (1..=19; 3 is zstd's default).
    pub level: i32,
    /// Keep at most this many output bytes per job (the first ones, in
    /// order); the rest is dropped and the job marked `truncated`.
    pub max_bytes: Option<i64>,
    /// Only jobs that finished at least this long ago (ms), so the worker's
    /// last flush has landed.
    pub settle_ms: i64,
    /// Jobs packed per write transaction.
    pub batch: i64,
}

/// What one packing pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackReport {
    pub jobs: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
}

/// Output compression totals over every packed job.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct CompressionTotals {
    /// Jobs whose output is packed.
    pub jobs: i64,
    /// Output bytes before compression.
    pub raw_bytes: i64,
    /// Bytes stored.
    pub stored_bytes: i64,
    /// raw / stored (null while nothing is packed).
    pub ratio: Option<f64>,
}

/// Encode chunks as records and compress them. Returns the packed bytes,
/// the raw byte count kept and whether `max_bytes` cut anything.
pub fn pack(
    chunks: &[OutputChunk],
    level: i32,
    max_bytes: Option<i64>,
) -> std::io::Result<(Vec<u8>, i64, bool)> {
    let mut records = Vec::new();
    let mut kept: i64 = 0;
    let mut cut = false;
    for c in chunks {
        let mut data: &[u8] = &c.data;
        if let Some(max) = max_bytes {
            let room = (max - kept).max(0) as usize;
            if data.len() > room {
                data = &data[..room];
                cut = true;
            }
            if data.is_empty() {
                continue;
            }
        }
        records.extend_from_slice(&c.seq.to_be_bytes());
        records.push(c.stream.code() as u8);
        records.extend_from_slice(&(data.len() as u32).to_be_bytes());
        records.extend_from_slice(data);
        kept += data.len() as i64;
    }
    let packed = zstd::bulk::compress(&records, level)?;
    Ok((packed, kept, cut))
}

/// Decompress and decode what [`pack`] wrote. `raw_bytes` bounds the output
/// buffer (records carry 13 bytes of framing per chunk on top).
pub fn unpack(data: &[u8], raw_bytes: i64, chunks: i64) -> Result<Vec<OutputChunk>> {
    let cap = raw_bytes.max(0) as usize + 13 * chunks.max(0) as usize;
    let records = zstd::bulk::decompress(data, cap)
        .map_err(|e| StoreError::Corrupt(format!("packed output: {e}")))?;
    let mut out = Vec::new();
    let mut r: &[u8] = &records;
    while !r.is_empty() {
        if r.len() < 13 {
            return Err(StoreError::Corrupt("packed output: short record".into()));
        }
        let seq = i64::from_be_bytes(r[..8].try_into().expect("8 bytes"));
        let stream = Stream::from_code(r[8] as i64)
            .ok_or_else(|| StoreError::Corrupt(format!("packed output: stream {}", r[8])))?;
        let len = u32::from_be_bytes(r[9..13].try_into().expect("4 bytes")) as usize;
        r = &r[13..];
        if r.len() < len {
            return Err(StoreError::Corrupt("packed output: short data".into()));
        }
        out.push(OutputChunk {
            seq,
            stream,
            data: r[..len].to_vec(),
        });
        r = &r[len..];
    }
    Ok(out)
}

fn chunk_rows(rows: &[sqlx::any::AnyRow]) -> Result<Vec<OutputChunk>> {
    rows.iter().map(|r| chunk_from(&Row::Any(r))).collect()
}

/// An output chunk from a `seq, stream, data` row.
fn chunk_from(r: &Row<'_, '_>) -> Result<OutputChunk> {
    let code: i64 = r.get(1usize)?;
    Ok(OutputChunk {
        seq: r.get(0usize)?,
        stream: Stream::from_code(code)
            .ok_or_else(|| StoreError::Corrupt(format!("stream {code}")))?,
        data: r.get(2usize)?,
    })
}

impl Store {
    /// Append output chunks and update the job's byte counters, atomically
    /// (through the group-commit writer).
    ///
    /// A retry of a write whose commit was not confirmed (the connection
    /// dropped after COMMIT) sends the same chunks under the same seqs again:
    /// those are already there and are kept. A different chunk under a stored
    /// seq is a conflict (`job_output_pkey`), and then nothing of the call is written.
    pub async fn append_output(
        &self,
        job_id: &str,
        chunks: &[OutputChunk],
        stdout_bytes: i64,
        stderr_bytes: i64,
        truncated: bool,
    ) -> Result<()> {
        self.writer
            .submit(crate::writer::Work::Append {
                job_id: job_id.to_string(),
                chunks: chunks.to_vec(),
                stdout_bytes,
                stderr_bytes,
                truncated,
            })
            .await?;
        Ok(())
    }

    /// The stored chunks of a job in order, optionally after `after_seq`,
    /// whether they are rows or packed (see the module doc).
    pub async fn output_chunks(&self, job_id: &str, after_seq: i64) -> Result<Vec<OutputChunk>> {
        let rows = sqlx::query(
            "SELECT seq, stream, data FROM job_output WHERE job_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(job_id)
        .bind(after_seq)
        .fetch_all(&self.read)
        .await?;
        let mut chunks = chunk_rows(&rows)?;
        let packed =
            sqlx::query("SELECT data, raw_bytes, chunks FROM job_output_packed WHERE job_id = $1")
                .bind(job_id)
                .fetch_optional(&self.read)
                .await?;
        if let Some(p) = packed {
            let data: Vec<u8> = p.try_get(0)?;
            let (raw, n): (i64, i64) = (p.try_get(1)?, p.try_get(2)?);
            let seen: std::collections::HashSet<i64> = chunks.iter().map(|c| c.seq).collect();
            let more = tokio::task::spawn_blocking(move || unpack(&data, raw, n))
                .await
                .map_err(|e| StoreError::Corrupt(e.to_string()))??;
            chunks.extend(
                more.into_iter()
                    .filter(|c| c.seq > after_seq && !seen.contains(&c.seq)),
            );
            chunks.sort_by_key(|c| c.seq);
        }
        Ok(chunks)
    }

    /// The full stored stdout and stderr of a job, bytes-exact.
    pub async fn job_output(&self, job_id: &str) -> Result<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        let mut err = Vec::new();
        for c in self.output_chunks(job_id, -1).await? {
            match c.stream {
                Stream::Stdout => out.extend_from_slice(&c.data),
                Stream::Stderr => err.extend_from_slice(&c.data),
            }
        }
        Ok((out, err))
    }

    /// Pack the output of up to `opts.batch` finished jobs (oldest first):
    /// read and compress outside any transaction, then one short write
    /// transaction swaps the rows for the packed row. Returns what it did;
    /// `jobs == 0` means nothing is left to pack.
    pub async fn pack_finished_output(&self, opts: &PackOptions) -> Result<PackReport> {
        let before = remora_domain::time::now_ms() - opts.settle_ms.max(0);
        let ids: Vec<String> = sqlx::query(&format!(
            "SELECT id FROM jobs WHERE output_packed = 0 AND finished_at IS NOT NULL AND finished_at <= $1
             ORDER BY finished_at LIMIT {}",
            opts.batch.clamp(1, 10_000)
        ))
        .bind(before)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            return Ok(PackReport::default());
        }
        struct Packed {
            id: String,
            data: Option<(Vec<u8>, i64, i64, bool)>,
            max_seq: i64,
        }
        let mut packed = Vec::with_capacity(ids.len());
        let mut report = PackReport::default();
        for id in ids {
            let rows = sqlx::query(
                "SELECT seq, stream, data FROM job_output WHERE job_id = $1 ORDER BY seq",
            )
            .bind(&id)
            .fetch_all(&self.read)
            .await?;
            let chunks = chunk_rows(&rows)?;
            let max_seq = chunks.last().map(|c| c.seq).unwrap_or(-1);
            let data = if chunks.is_empty() {
                None
            } else {
                let (level, max) = (opts.level, opts.max_bytes);
                let n = chunks.len() as i64;
                let (bytes, raw, cut) =
                    tokio::task::spawn_blocking(move || pack(&chunks, level, max))
                        .await
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?
                        .map_err(|e| StoreError::Corrupt(format!("zstd: {e}")))?;
                report.raw_bytes += raw as u64;
                report.stored_bytes += bytes.len() as u64;
                Some((bytes, raw, n, cut))
            };
            packed.push(Packed { id, data, max_seq });
        }
        let now = remora_domain::time::now_ms();
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        for p in &packed {
            // Only a still-final, still-unpacked job (a purge may have won).
            let r = sqlx::query(
                "UPDATE jobs SET output_packed = 1 WHERE id = $1 AND output_packed = 0 AND finished_at IS NOT NULL",
            )
            .bind(&p.id)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() != 1 {
                continue;
            }
            report.jobs += 1;
            let Some((data, raw, n, cut)) = &p.data else {
                continue;
            };
            sqlx::query(
                "INSERT INTO job_output_packed (job_id, codec, data, raw_bytes, stored_bytes, chunks, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&p.id)
            .bind(CODEC_ZSTD)
            .bind(data.clone())
            .bind(*raw)
            .bind(data.len() as i64)
            .bind(*n)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_unique)?;
            sqlx::query("DELETE FROM job_output WHERE job_id = $1 AND seq <= $2")
                .bind(&p.id)
                .bind(p.max_seq)
                .execute(&mut *tx)
                .await?;
            if *cut {
                sqlx::query("UPDATE jobs SET truncated = 1 WHERE id = $1")
                    .bind(&p.id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(report)
    }

    /// Totals over all packed output (for `/system/enhanced`).
    pub async fn compression_totals(&self) -> Result<CompressionTotals> {
        let r = sqlx::query(
            "SELECT COUNT(*), CAST(COALESCE(SUM(raw_bytes), 0) AS BIGINT), CAST(COALESCE(SUM(stored_bytes), 0) AS BIGINT) FROM job_output_packed",
        )
        .fetch_one(&self.read)
        .await?;
        let (jobs, raw, stored): (i64, i64, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        Ok(CompressionTotals {
            jobs,
            raw_bytes: raw,
            stored_bytes: stored,
            ratio: (stored > 0).then(|| raw as f64 / stored as f64),
        })
    }

    /// Whether a job's output is packed (tests and the API's job detail).
    pub async fn output_is_packed(&self, job_id: &str) -> Result<bool> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM job_output_packed WHERE job_id = $1")
            .bind(job_id)
            .fetch_one(&self.read)
            .await?
            .try_get(0)?;
        Ok(n > 0)
    }
}

/// `Store::append_output` inside the caller's transaction: one multi-row
/// `INSERT … ON CONFLICT DO NOTHING` and the counters. Only when a seq was
/// already stored are the call's rows read back: identical ones are a retry
/// (kept, Ok); a different one is a conflict, returned as a broken write
/// because the call's other rows are inserted by then — the writer rolls the
/// transaction back (and runs the call alone, where the rollback undoes just it).
pub(crate) async fn append_in(
    conn: &mut Conn<'_>,
    job_id: &str,
    chunks: &[OutputChunk],
    stdout_bytes: i64,
    stderr_bytes: i64,
    truncated: bool,
) -> Result<(), crate::writer::OpError> {
    insert_chunks_in(conn, job_id, chunks).await?;
    update_counters(conn, job_id, stdout_bytes, stderr_bytes, truncated).await
}

/// The chunks of an append, each row at most once: an identical retry of a stored chunk is kept,
/// a different chunk under a stored seq is a conflict (`job_output_pkey`).
pub(crate) async fn insert_chunks_in(
    conn: &mut Conn<'_>,
    job_id: &str,
    chunks: &[OutputChunk],
) -> Result<(), crate::writer::OpError> {
    let now = remora_domain::time::now_ms();
    let mut inserted = 0;
    // At most 200 rows per statement, so the bind count stays far under SQLite's 32,766 and
    // PostgreSQL's 65,535.
    for part in chunks.chunks(200) {
        let mut sql =
            String::from("INSERT INTO job_output (job_id, seq, stream, data, created_at) VALUES ");
        let mut args: Vec<Arg<'_>> = Vec::with_capacity(part.len() * 5);
        for (i, c) in part.iter().enumerate() {
            let b = i * 5;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5
            ));
            args.extend::<[Arg<'_>; 5]>([
                job_id.into(),
                c.seq.into(),
                c.stream.code().into(),
                c.data.as_slice().into(),
                now.into(),
            ]);
        }
        sql.push_str(" ON CONFLICT (job_id, seq) DO NOTHING");
        inserted += conn.execute(&sql, &args).await?;
    }
    if inserted != chunks.len() as u64 {
        let (lo, hi) = (
            chunks.iter().map(|c| c.seq).min().unwrap_or(0),
            chunks.iter().map(|c| c.seq).max().unwrap_or(0),
        );
        let stored: std::collections::HashMap<i64, OutputChunk> = conn
            .fetch_all(
                "SELECT seq, stream, data FROM job_output WHERE job_id = $1 AND seq >= $2 AND seq <= $3",
                &[job_id.into(), lo.into(), hi.into()],
                chunk_from,
            )
            .await?
            .into_iter()
            .map(|c| (c.seq, c))
            .collect();
        let same = chunks.iter().all(|c| {
            stored
                .get(&c.seq)
                .is_some_and(|s| s.stream == c.stream && s.data == c.data)
        });
        if !same {
            return Err(crate::writer::OpError::Broken(StoreError::Conflict {
                constraint: "job_output_pkey".into(),
            }));
        }
    }
    Ok(())
}

pub(crate) async fn update_counters(
    conn: &mut Conn<'_>,
    job_id: &str,
    stdout_bytes: i64,
    stderr_bytes: i64,
    truncated: bool,
) -> Result<(), crate::writer::OpError> {
    conn.execute(
        "UPDATE jobs SET stdout_bytes = $1, stderr_bytes = $2, truncated = $3 WHERE id = $4",
        &[
            stdout_bytes.into(),
            stderr_bytes.into(),
            (truncated as i64).into(),
            job_id.into(),
        ],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(seq: i64, stream: Stream, data: &[u8]) -> OutputChunk {
        OutputChunk {
            seq,
            stream,
            data: data.to_vec(),
        }
    }

    #[test]
    fn pack_round_trips_and_cuts_at_max_bytes() {
        let chunks = vec![
            c(0, Stream::Stdout, b"hello\n"),
            c(1, Stream::Stderr, &[0, 0xff, 0xfe]),
            c(5, Stream::Stdout, b""),
            c(7, Stream::Stdout, b"world\n"),
        ];
        let (p, raw, cut) = pack(&chunks, 3, None).unwrap();
        assert_eq!((raw, cut), (15, false));
        assert_eq!(unpack(&p, raw, 4).unwrap(), chunks);
        let (p, raw, cut) = pack(&chunks, 3, Some(8)).unwrap();
        assert_eq!((raw, cut), (8, true));
        assert_eq!(
            unpack(&p, raw, 4).unwrap(),
            vec![
                c(0, Stream::Stdout, b"hello\n"),
                c(1, Stream::Stderr, &[0, 0xff])
            ]
        );
        assert!(unpack(b"not zstd", 10, 1).is_err());
    }
}
