//! `remora retention show|set|run-now`: the retention policy (days per final status, output
//! kept per job, export before delete) and a maintenance pass started now.

use crate::client::{Api, Reply};
use crate::render::{emit, table, Human, Output, View};
use anyhow::{bail, Result};
use clap::Subcommand;
use remora_store::maintenance::PassReport;
use remora_store::retention::RetentionPolicy;
use serde_json::Value;

#[derive(Subcommand)]
pub enum RetentionCmd {
    /// The retention policy (the default keeps everything).
    #[command(after_help = "Example:\n  remora retention show")]
    Show,
    /// Change some fields of the policy (admin); the others keep their value. Days are 1..=36500,
    /// or `keep` to keep such jobs forever.
    #[command(
        after_help = "Examples:\n  remora retention set --completed 30 --failed 90 --canceled 7\n  remora retention set --output-max-bytes 1048576 --export-before-delete true\n  remora retention set --failed keep --output-max-bytes all"
    )]
    Set {
        /// Days completed jobs are kept (or `keep`).
        #[arg(long)]
        completed: Option<String>,
        /// Days failed jobs are kept (or `keep`).
        #[arg(long)]
        failed: Option<String>,
        /// Days timed-out jobs are kept (or `keep`).
        #[arg(long)]
        timed_out: Option<String>,
        /// Days canceled jobs are kept (or `keep`).
        #[arg(long)]
        canceled: Option<String>,
        /// Output bytes kept per finished job (at least 1024), or `all`.
        #[arg(long)]
        output_max_bytes: Option<String>,
        /// Append each job to the API's REMORA_RETENTION_EXPORT_DIR before deleting it.
        #[arg(long, action = clap::ArgAction::Set)]
        export_before_delete: Option<bool>,
    },
    /// Run one compression and purge pass now and print what it did (admin or operator; audited).
    #[command(name = "run-now", after_help = "Example:\n  remora retention run-now")]
    RunNow,
}

/// `keep`/`all`/`null` is none; otherwise a whole number.
fn days_or_none(field: &str, v: &str, none: &str) -> Result<Option<i64>> {
    if v == none || v == "null" {
        return Ok(None);
    }
    match v.parse::<i64>() {
        Ok(n) => Ok(Some(n)),
        Err(_) => bail!("--{field} takes a whole number or `{none}`, not `{v}`"),
    }
}

pub async fn run(api: &Api, out: Output, c: RetentionCmd) -> Result<i32> {
    match c {
        RetentionCmd::Show => {
            let r: Reply<RetentionPolicy> = api.get_as("/api/v1/settings/retention").await?;
            emit(out, &r.raw, &PolicyView(&r.body));
        }
        RetentionCmd::Set {
            completed,
            failed,
            timed_out,
            canceled,
            output_max_bytes,
            export_before_delete,
        } => {
            let mut p: RetentionPolicy = api.get_as("/api/v1/settings/retention").await?.body;
            let d = &mut p.jobs_days;
            for (field, given, slot) in [
                ("completed", completed, &mut d.completed),
                ("failed", failed, &mut d.failed),
                ("timed-out", timed_out, &mut d.timed_out),
                ("canceled", canceled, &mut d.canceled),
            ] {
                if let Some(v) = given {
                    *slot = days_or_none(field, &v, "keep")?;
                }
            }
            if let Some(v) = output_max_bytes {
                p.output_max_bytes = days_or_none("output-max-bytes", &v, "all")?;
            }
            if let Some(v) = export_before_delete {
                p.export_before_delete = v;
            }
            let body = serde_json::to_value(&p)?;
            let r: Reply<RetentionPolicy> = api
                .send_as(
                    api.request(reqwest::Method::PUT, "/api/v1/settings/retention")
                        .json(&body),
                )
                .await?;
            emit(out, &r.raw, &PolicyView(&r.body));
        }
        RetentionCmd::RunNow => {
            let r: Reply<PassReport> = api
                .post_as("/api/v1/settings/retention/run", &Value::Null)
                .await?;
            let b = &r.body;
            emit(
                out,
                &r.raw,
                &Human::line(format!(
                    "retention pass: {} jobs deleted ({} exported first), {} jobs' output compressed, {} batches",
                    b.deleted_jobs, b.exported_jobs, b.packed_jobs, b.batches
                )),
            );
        }
    }
    Ok(0)
}

struct PolicyView<'a>(&'a RetentionPolicy);

impl View for PolicyView<'_> {
    fn human(&self) -> Human {
        let days = |d: Option<i64>| d.map_or("keep forever".to_string(), |n| format!("{n} days"));
        let p = self.0;
        let mut t = table(&["SETTING", "VALUE"]);
        for (k, v) in [
            ("completed jobs", days(p.jobs_days.completed)),
            ("failed jobs", days(p.jobs_days.failed)),
            ("timed-out jobs", days(p.jobs_days.timed_out)),
            ("canceled jobs", days(p.jobs_days.canceled)),
            (
                "output kept per job",
                p.output_max_bytes
                    .map_or("all".to_string(), |n| format!("{n} bytes")),
            ),
            ("export before delete", p.export_before_delete.to_string()),
        ] {
            t.add_row(vec![k.to_string(), v]);
        }
        Human::table(t)
    }
}
