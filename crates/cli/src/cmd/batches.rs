//! `remora batches`: a multi-server submission's grid, its output grouped across hosts
//! (like `dshbak -c`), cancel and rerun; and [`follow`], the progress bar and grouped
//! summary `remora submit --follow` shows for a batch.

use crate::client::{enc, Api, Reply};
use crate::render::{emit, opt, paint_status, table, Human, Output, View};
use crate::responses::{BatchCreated, BatchGroups, BatchView, OutputGroup};
use anyhow::{Context, Result};
use remora_domain::batch::BatchStatus;
use remora_domain::JobStatus;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

/// Exit codes of the batch commands (`submit --follow` on a batch, `batches …`).
pub const EXIT_ALL_COMPLETED: i32 = 0;
/// The batch ended and some host did not complete (failed, timed out, canceled, stopped).
pub const EXIT_NOT_ALL_COMPLETED: i32 = 1;
/// A second Ctrl-C left the batch running.
pub const EXIT_DETACHED: i32 = crate::follow::EXIT_DETACHED;
/// The request could not be made: the CLI or the API refused the arguments, the API is
/// unreachable or answered an error (clap's own usage errors exit 2 before anything runs).
pub const EXIT_REQUEST_FAILED: i32 = 3;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BatchesArgs {
    #[command(subcommand)]
    cmd: Option<BatchesCmd>,
    /// Batch id.
    #[arg(required = true)]
    id: Option<String>,
    /// Output grouped across hosts by identical (stdout, stderr, exit code).
    #[arg(long)]
    groups: bool,
    /// Only the hosts that did not complete (failed, timed out, canceled).
    #[arg(long)]
    failed: bool,
}

#[derive(clap::Subcommand)]
pub enum BatchesCmd {
    /// Cancel a running batch: hosts not started end `canceled`, running ones are stopped.
    #[command(after_help = "Example:\n  remora batches cancel 0199…")]
    Cancel { id: String },
    /// Run a finished batch's hosts again, as a new batch with the same policy.
    #[command(after_help = "Example:\n  remora batches rerun 0199… --only failed --follow")]
    Rerun {
        id: String,
        /// `failed`: the hosts that did not complete; `all`: every host.
        #[arg(long, value_enum, default_value = "all")]
        only: Only,
        /// Show progress, then the grouped output; exit 0 only if every host completed.
        #[arg(long, short)]
        follow: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Only {
    Failed,
    All,
}

pub async fn run(api: &Api, out: Output, a: BatchesArgs) -> Result<i32> {
    match a.cmd {
        Some(BatchesCmd::Cancel { id }) => {
            let r: Reply<BatchView> = api
                .post_as(&format!("/api/v1/batches/{}/cancel", enc(&id)), &json!({}))
                .await?;
            emit(out, &r.raw, &Grid::new(&id, &r.body, false));
            Ok(EXIT_ALL_COMPLETED)
        }
        Some(BatchesCmd::Rerun { id, only, follow }) => {
            let only = match only {
                Only::Failed => "failed",
                Only::All => "all",
            };
            let r: Reply<BatchCreated> = api
                .post_as(
                    &format!("/api/v1/batches/{}/rerun", enc(&id)),
                    &json!({ "only": only }),
                )
                .await?;
            let new = r
                .body
                .batch_id
                .clone()
                .context("the API's rerun reply has no batch_id")?;
            if follow {
                eprintln!("batch {new}: {} host(s), rerun of {id}", r.body.jobs.len());
                return self::follow(api, out, &new).await;
            }
            emit(out, &r.raw, &Human::line(&new));
            Ok(EXIT_ALL_COMPLETED)
        }
        None => {
            let id = a.id.context("give a batch id")?;
            let b: Reply<BatchView> = api.get_as(&format!("/api/v1/batches/{}", enc(&id))).await?;
            if a.groups {
                let g = groups(api, &id).await?;
                emit(out, &g.raw, &Groups::new(&id, &b.body, &g.body, a.failed));
            } else {
                emit(out, &b.raw, &Grid::new(&id, &b.body, a.failed));
            }
            Ok(exit_of(&b.body))
        }
    }
}

async fn groups(api: &Api, id: &str) -> Result<Reply<BatchGroups>> {
    api.get_as(&format!("/api/v1/batches/{}/groups", enc(id)))
        .await
}

/// 0 while running or when every host completed, 1 once it ended otherwise.
fn exit_of(b: &BatchView) -> i32 {
    match b.status {
        Some(BatchStatus::Running | BatchStatus::Completed) => EXIT_ALL_COMPLETED,
        Some(_) => EXIT_NOT_ALL_COMPLETED,
        // An API without batch statuses: judge from the counts.
        None if !b.finished => EXIT_ALL_COMPLETED,
        None => {
            let done = b.summary.get("completed").copied().unwrap_or(0);
            if done == b.servers.len() as i64 {
                EXIT_ALL_COMPLETED
            } else {
                EXIT_NOT_ALL_COMPLETED
            }
        }
    }
}

/// "running 3 · completed 10 · failed 1": the statuses present, in lifecycle order.
fn counts_line(summary: &BTreeMap<String, i64>) -> String {
    JobStatus::ALL
        .iter()
        .filter_map(|s| {
            let n = summary.get(s.as_str()).copied().unwrap_or(0);
            (n != 0).then(|| format!("{} {n}", s.as_str()))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

fn finished_count(summary: &BTreeMap<String, i64>) -> u64 {
    JobStatus::ALL
        .iter()
        .filter(|s| s.is_final())
        .map(|s| summary.get(s.as_str()).copied().unwrap_or(0).max(0) as u64)
        .sum()
}

/// Poll a batch until it ends, drawing a progress bar with its counts on stderr when that
/// is a terminal (one plain line per change otherwise), then print the grouped output.
/// Ctrl-C cancels the batch; a second Ctrl-C detaches.
pub async fn follow(api: &Api, out: Output, id: &str) -> Result<i32> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the Ctrl-C handler")?;
    let bar = (std::io::stderr().is_terminal() && out == Output::Table).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} {wide_bar} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.enable_steady_tick(Duration::from_millis(200));
        b
    });
    let mut last = String::new();
    let mut interrupts = 0;
    let b = loop {
        let b: Reply<BatchView> = api.get_as(&format!("/api/v1/batches/{}", enc(id))).await?;
        let total = b.body.servers.len() as u64;
        let done = finished_count(&b.body.summary);
        let mut msg = counts_line(&b.body.summary);
        if let Some(eta) = b.body.eta_ms {
            msg.push_str(&format!(" · ETA {}s", (eta + 999) / 1000));
        }
        match &bar {
            Some(bar) => {
                bar.set_length(total);
                bar.set_position(done);
                bar.set_message(msg);
            }
            None if out == Output::Table => {
                let line = format!(
                    "batch {id}: {done}/{total} {}",
                    counts_line(&b.body.summary)
                );
                if line != last {
                    eprintln!("{line}");
                    last = line;
                }
            }
            None => {}
        }
        if b.body.finished {
            break b;
        }
        // Larger batches are heavier to read: poll them less often.
        let every = Duration::from_millis(if total > 1000 { 1500 } else { 400 });
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = interrupt.recv() => {
                interrupts += 1;
                if interrupts == 1 {
                    if let Some(bar) = &bar { bar.suspend(|| ()); }
                    eprintln!("\nremora: canceling batch {id}… (Ctrl-C again to detach)");
                    if let Err(e) = api.post(&format!("/api/v1/batches/{}/cancel", enc(id)), &json!({})).await {
                        eprintln!("remora: {e:#}");
                    }
                } else {
                    if let Some(bar) = &bar { bar.abandon(); }
                    eprintln!("remora: detached; batch {id} goes on");
                    return Ok(EXIT_DETACHED);
                }
            }
        }
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let g = groups(api, id).await?;
    let raw = json!({ "batch": b.raw, "groups": g.raw });
    emit(out, &raw, &Groups::new(id, &b.body, &g.body, false));
    Ok(match exit_of(&b.body) {
        EXIT_ALL_COMPLETED if b.body.status != Some(BatchStatus::Running) => EXIT_ALL_COMPLETED,
        _ => EXIT_NOT_ALL_COMPLETED,
    })
}

/// The per-server grid.
struct Grid<'a> {
    id: &'a str,
    batch: &'a BatchView,
    failed_only: bool,
}

impl<'a> Grid<'a> {
    fn new(id: &'a str, batch: &'a BatchView, failed_only: bool) -> Grid<'a> {
        Grid {
            id,
            batch,
            failed_only,
        }
    }
}

impl View for Grid<'_> {
    fn human(&self) -> Human {
        let mut t = table(&["SERVER", "STATUS", "EXIT", "JOB", "ERROR"]);
        for c in &self.batch.servers {
            if self.failed_only && !did_not_complete(c.status) {
                continue;
            }
            t.add_row(vec![
                opt(&c.server_name),
                paint_status(c.status.as_str()),
                opt(&c.exit_code),
                c.job_id.clone(),
                opt(&c.error),
            ]);
        }
        Human::table(t).note(footer(self.id, self.batch))
    }
}

fn did_not_complete(s: JobStatus) -> bool {
    s.is_final() && s != JobStatus::Completed
}

fn footer(id: &str, b: &BatchView) -> String {
    let summary: Vec<String> = b
        .summary
        .iter()
        .filter(|(_, n)| **n != 0)
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    match b.status {
        Some(s) => format!("batch {id} {}: {}", s.as_str(), summary.join(", ")),
        None => format!("batch {id}: {}", summary.join(", ")),
    }
}

/// Output grouped across hosts, each group's hosts (compressed like `web[1-3]`) once above
/// its output, largest group first, as `dshbak -c` prints.
struct Groups<'a> {
    id: &'a str,
    batch: &'a BatchView,
    groups: &'a BatchGroups,
    failed_only: bool,
}

impl<'a> Groups<'a> {
    fn new(
        id: &'a str,
        batch: &'a BatchView,
        groups: &'a BatchGroups,
        failed_only: bool,
    ) -> Groups<'a> {
        Groups {
            id,
            batch,
            groups,
            failed_only,
        }
    }
}

const RULE: &str = "----------------";

fn group_header(g: &OutputGroup, names: &[String]) -> String {
    let mut statuses: Vec<&str> = g.hosts.iter().map(|h| h.status.as_str()).collect();
    statuses.sort_unstable();
    statuses.dedup();
    let code = match g.exit_code {
        Some(c) => format!("exit {c}"),
        None => "no exit code".to_string(),
    };
    let status = if statuses == ["completed"] {
        String::new()
    } else {
        format!(", {}", statuses.join("/"))
    };
    format!(
        "{} ({} host{}, {code}{status})",
        hostlist(names),
        names.len(),
        if names.len() == 1 { "" } else { "s" }
    )
}

impl View for Groups<'_> {
    fn human(&self) -> Human {
        let mut s = String::new();
        for g in &self.groups.groups {
            let names: Vec<String> = g
                .hosts
                .iter()
                .filter(|h| !self.failed_only || did_not_complete(h.status))
                .map(|h| h.server_name.clone().unwrap_or_else(|| h.server_id.clone()))
                .collect();
            if names.is_empty() {
                continue;
            }
            s.push_str(&format!("{RULE}\n{}\n{RULE}\n", group_header(g, &names)));
            for (text, label) in [(&g.stdout, None), (&g.stderr, Some("[stderr]"))] {
                if text.is_empty() {
                    continue;
                }
                if let Some(l) = label {
                    s.push_str(l);
                    s.push('\n');
                }
                s.push_str(text);
                if !text.ends_with('\n') {
                    s.push('\n');
                }
            }
        }
        let codes: Vec<String> = self
            .groups
            .exit_codes
            .iter()
            .map(|(c, n)| format!("{c}×{n}"))
            .collect();
        Human {
            stdout: s,
            stderr: String::new(),
        }
        .note(format!(
            "{}; exit codes: {}",
            footer(self.id, self.batch),
            codes.join(", ")
        ))
    }
}

/// Host names compressed as ClusterShell/pdsh write them: `db,web-[1-3,7],web-[01-02]`.
/// Names sharing a prefix and a trailing number's width (when zero-padded) fold into ranges.
pub fn hostlist(names: &[String]) -> String {
    // (prefix, padded width or 0) -> numbers; names without a trailing number stay as they are.
    let mut folds: BTreeMap<(String, usize), Vec<u64>> = BTreeMap::new();
    let mut plain: Vec<String> = Vec::new();
    for n in names {
        let digits = n.len() - n.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (prefix, num) = n.split_at(n.len() - digits);
        match num.parse::<u64>() {
            Ok(v) if digits > 0 && digits <= 18 => {
                let width = if num.starts_with('0') && num.len() > 1 {
                    num.len()
                } else {
                    0
                };
                folds
                    .entry((prefix.to_string(), width))
                    .or_default()
                    .push(v);
            }
            _ => plain.push(n.clone()),
        }
    }
    let mut parts: Vec<String> = plain;
    for ((prefix, width), mut nums) in folds {
        nums.sort_unstable();
        nums.dedup();
        let f = |v: u64| format!("{v:0width$}");
        if nums.len() == 1 {
            parts.push(format!("{prefix}{}", f(nums[0])));
            continue;
        }
        let mut ranges: Vec<String> = Vec::new();
        let mut start = nums[0];
        let mut prev = nums[0];
        for &v in nums.iter().skip(1).chain(std::iter::once(&u64::MAX)) {
            if v != prev.wrapping_add(1) || v == u64::MAX {
                ranges.push(if start == prev {
                    f(start)
                } else {
                    format!("{}-{}", f(start), f(prev))
                });
                start = v;
            }
            prev = v;
        }
        parts.push(format!("{prefix}[{}]", ranges.join(",")));
    }
    parts.sort();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::responses::{BatchCell, GroupHost};

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hostlist_folds_numbered_names_into_ranges() {
        assert_eq!(
            hostlist(&names(&["web-3", "web-1", "web-2", "web-7", "db"])),
            "db,web-[1-3,7]"
        );
        assert_eq!(hostlist(&names(&["n01", "n02", "n10"])), "n10,n[01-02]");
        assert_eq!(hostlist(&names(&["a1"])), "a1");
        assert_eq!(hostlist(&names(&["x", "y"])), "x,y");
    }

    fn batch() -> BatchView {
        BatchView {
            status: Some(BatchStatus::Failed),
            finished: true,
            eta_ms: None,
            summary: [("completed", 2), ("failed", 1), ("queued", 0)]
                .into_iter()
                .map(|(k, n)| (k.to_string(), n))
                .collect(),
            servers: vec![BatchCell {
                server_name: Some("w1".into()),
                job_id: "j1".into(),
                status: JobStatus::Failed,
                exit_code: Some(3),
                error: None,
            }],
        }
    }

    #[test]
    fn the_footer_counts_only_the_statuses_present() {
        let b = batch();
        let h = Grid::new("b1", &b, false).human();
        assert_eq!(h.stderr, "batch b1 failed: completed: 2, failed: 1\n");
        assert!(h.stdout.contains("j1") && h.stdout.contains("failed"));
        assert_eq!(exit_of(&b), EXIT_NOT_ALL_COMPLETED);
    }

    #[test]
    fn groups_print_each_output_once_under_its_hosts() {
        let host = |n: &str, s| GroupHost {
            server_id: format!("id-{n}"),
            server_name: Some(n.into()),
            status: s,
        };
        let g = BatchGroups {
            groups: vec![
                OutputGroup {
                    exit_code: Some(0),
                    stdout: "hi\n".into(),
                    stderr: String::new(),
                    hosts: vec![
                        host("w1", JobStatus::Completed),
                        host("w2", JobStatus::Completed),
                    ],
                },
                OutputGroup {
                    exit_code: Some(3),
                    stdout: "ho".into(),
                    stderr: "bad\n".into(),
                    hosts: vec![host("w3", JobStatus::Failed)],
                },
            ],
            exit_codes: [("0".to_string(), 2), ("3".to_string(), 1)].into(),
        };
        let b = batch();
        let h = Groups::new("b1", &b, &g, false).human();
        assert_eq!(
            h.stdout,
            format!("{RULE}\nw[1-2] (2 hosts, exit 0)\n{RULE}\nhi\n{RULE}\nw3 (1 host, exit 3, failed)\n{RULE}\nho\n[stderr]\nbad\n")
        );
        assert!(h.stderr.contains("exit codes: 0×2, 3×1"), "{}", h.stderr);
        let only = Groups::new("b1", &b, &g, true).human();
        assert!(!only.stdout.contains("w[1-2]") && only.stdout.contains("w3 "));
    }

    #[test]
    fn counts_follow_the_lifecycle_order() {
        let s: BTreeMap<String, i64> = [("failed", 1), ("running", 2), ("queued", 0)]
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect();
        assert_eq!(counts_line(&s), "running 2 · failed 1");
        assert_eq!(finished_count(&s), 1);
    }
}
