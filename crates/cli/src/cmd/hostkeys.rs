//! `remora servers host-keys …`: read the host keys servers present now and pin a reviewed
//! list of them (the API's `/servers/host-keys/scan` and `/servers/host-keys/accept`).

use crate::client::Api;
use crate::render::{emit, table, Human, Output};
use crate::responses::ServerList;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};
use std::io::Write;

#[derive(Subcommand)]
pub enum HostKeysCmd {
    /// Read the key each server presents now (no login, nothing written) and compare it with
    /// its pin: `new` (no pin yet), `matches`, `mismatch` or `unreachable`.
    /// Without servers or --tag: every unpinned server and every one with a pending mismatch.
    #[command(
        after_help = "Examples:\n  remora servers host-keys scan --tag lab\n  remora servers host-keys scan web1 web2 -o json\n\nExit codes: 0 every server is new or matches; 1 any mismatch or unreachable."
    )]
    Scan {
        /// Every server with this tag.
        #[arg(long, conflicts_with = "servers")]
        tag: Option<String>,
        /// Server names or ids.
        servers: Vec<String>,
    },
    /// Scan, show what would be pinned, ask, then pin exactly the fingerprints shown.
    /// Named servers: their `new` and `mismatch` keys; `--all-new`: every unpinned server's
    /// key (a mismatch is never accepted unless its server is named).
    #[command(
        after_help = "Examples:\n  remora servers host-keys accept --all-new\n  remora servers host-keys accept --yes web1 web2\n\nWithout --yes the question is asked on stderr and answered on stdin (`y`); no answer\naccepts nothing. Exit codes: 0 accepted (or nothing to accept); 1 declined, or a named\nserver was unreachable (the others are accepted)."
    )]
    Accept {
        /// Every unpinned server (instead of naming servers).
        #[arg(long, conflicts_with = "servers")]
        all_new: bool,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
        /// Server names or ids.
        #[arg(required_unless_present = "all_new")]
        servers: Vec<String>,
    },
}

/// The CLI's word for the API's scan status.
fn state(status: &str) -> &'static str {
    match status {
        "unpinned" => "new",
        "match" => "matches",
        "mismatch" => "mismatch",
        _ => "unreachable",
    }
}

/// The scan result with each key's `state` added.
async fn scan(api: &Api, servers: Vec<String>) -> Result<Value> {
    let mut raw = api
        .post(
            "/api/v1/servers/host-keys/scan",
            &json!({ "servers": servers }),
        )
        .await?;
    for k in raw["keys"].as_array_mut().into_iter().flatten() {
        let s = state(k["status"].as_str().unwrap_or(""));
        k["state"] = json!(s);
    }
    Ok(raw)
}

fn keys(raw: &Value) -> Vec<&Value> {
    raw["keys"].as_array().into_iter().flatten().collect()
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("-").to_string()
}

/// One row per server: server, state, the presented fingerprint, and the pin (mismatch) or the
/// error (unreachable).
fn scan_table(rows: &[&Value]) -> comfy_table::Table {
    let mut t = table(&["SERVER", "STATE", "PRESENTED", "DETAIL"]);
    for k in rows {
        let detail = match k["state"].as_str() {
            Some("mismatch") => format!("pinned {}", s(&k["pinned"])),
            Some("unreachable") => s(&k["error"]),
            _ => String::new(),
        };
        t.add_row(vec![
            s(&k["name"]),
            s(&k["state"]),
            s(&k["presented"]),
            detail,
        ]);
    }
    t
}

pub async fn run(api: &Api, out: Output, c: HostKeysCmd) -> Result<i32> {
    match c {
        HostKeysCmd::Scan { tag, servers } => {
            let names = match tag {
                Some(t) => {
                    let list: ServerList = api.get_as("/api/v1/servers").await?.body;
                    let ids: Vec<String> = list
                        .servers
                        .into_iter()
                        .filter(|s| s.tags.contains(&t))
                        .map(|s| s.id)
                        .collect();
                    if ids.is_empty() {
                        bail!("no server has the tag `{t}`");
                    }
                    ids
                }
                None => servers,
            };
            let raw = scan(api, names).await?;
            let rows = keys(&raw);
            let count = |st: &str| rows.iter().filter(|k| k["state"] == st).count();
            let (new, bad) = (count("new"), count("mismatch") + count("unreachable"));
            let mut h = Human::table(scan_table(&rows)).note(format!(
                "{} scanned: {new} new, {} matches, {} mismatch, {} unreachable",
                rows.len(),
                count("matches"),
                count("mismatch"),
                count("unreachable")
            ));
            if new + count("mismatch") > 0 {
                h = h.note(
                    "to pin after review: remora servers host-keys accept NAME… (or --all-new)",
                );
            }
            emit(out, &raw, &h);
            Ok(if bad == 0 { 0 } else { 1 })
        }
        HostKeysCmd::Accept {
            all_new,
            yes,
            servers,
        } => {
            let raw = scan(api, if all_new { vec![] } else { servers }).await?;
            let rows = keys(&raw);
            let take = |k: &&&Value| match k["state"].as_str() {
                Some("new") => true,
                Some("mismatch") => !all_new,
                _ => false,
            };
            let chosen: Vec<&Value> = rows.iter().filter(take).copied().collect();
            let unreachable: Vec<&Value> = rows
                .iter()
                .filter(|k| k["state"] == "unreachable")
                .copied()
                .collect();
            let skipped: Vec<Value> = rows
                .iter()
                .filter(|k| !take(k))
                .map(|k| {
                    json!({ "server_id": k["server_id"], "name": k["name"],
                        "state": k["state"], "error": k["error"] })
                })
                .collect();
            let fail = i32::from(!all_new && !unreachable.is_empty());
            let mut review = Human::default();
            if out == Output::Table {
                review = Human::table(scan_table(&rows));
                for k in &unreachable {
                    review = review.note(format!(
                        "{}: unreachable, not accepted ({})",
                        s(&k["name"]),
                        s(&k["error"])
                    ));
                }
            }
            let _ = std::io::stdout().write_all(review.stdout.as_bytes());
            let _ = std::io::stderr().write_all(review.stderr.as_bytes());
            if chosen.is_empty() {
                emit(
                    out,
                    &json!({ "accepted": 0, "servers": [], "skipped": skipped }),
                    &Human::default().note("nothing to accept"),
                );
                return Ok(fail);
            }
            if !yes && !confirm(chosen.len())? {
                emit(
                    out,
                    &json!({ "accepted": 0, "servers": [], "skipped": skipped, "declined": true }),
                    &Human::default().note("nothing accepted (answer `y`, or give --yes)"),
                );
                return Ok(1);
            }
            let body = json!({ "keys": chosen.iter().map(|k| json!({
                "server": k["server_id"], "fingerprint": k["presented"] })).collect::<Vec<_>>() });
            let mut res = api.post("/api/v1/servers/host-keys/accept", &body).await?;
            res["skipped"] = json!(skipped);
            let n = res["accepted"].as_u64().unwrap_or(0);
            let mut h = Human::default();
            for k in &chosen {
                h = h.note(format!(
                    "pinned {} for {}",
                    s(&k["presented"]),
                    s(&k["name"])
                ));
            }
            emit(out, &res, &h.note(format!("{n} host keys accepted")));
            Ok(fail)
        }
    }
}

/// Ask on stderr, read one line of stdin: `y` or `yes` accepts; anything else (or no input)
/// declines.
fn confirm(n: usize) -> Result<bool> {
    eprint!("pin these {n} host keys? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the answer from stdin")?;
    let a = line.trim().to_ascii_lowercase();
    Ok(a == "y" || a == "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_statuses_map_to_the_cli_states() {
        assert_eq!(state("unpinned"), "new");
        assert_eq!(state("match"), "matches");
        assert_eq!(state("mismatch"), "mismatch");
        assert_eq!(state("error"), "unreachable");
    }
}
