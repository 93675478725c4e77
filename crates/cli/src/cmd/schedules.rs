//! `remora schedules …`: list, create, pause, resume, remove schedules and show next runs.

use crate::client::{enc, Api};
use crate::render::{emit, table, Human, Output};
use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub enum SchedulesCmd {
    /// List schedules with their next run.
    #[command(after_help = "Example:\n  remora schedules list")]
    List,
    /// Create a schedule: a template run on a cron expression in a time zone.
    #[command(
        after_help = "Example:\n  remora schedules create nightly --template backup --cron '30 2 * * *' --tz Europe/Berlin -p target=db"
    )]
    Create {
        name: String,
        /// Template id or name.
        #[arg(long)]
        template: String,
        /// 5 fields (minute hour day-of-month month day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly.
        #[arg(long)]
        cron: String,
        /// IANA time zone.
        #[arg(long = "tz", default_value = "UTC")]
        timezone: String,
        /// A parameter value, key=value (repeatable).
        #[arg(short = 'p', long = "param")]
        params: Vec<String>,
        /// While the previous run is still going: skip, queue or allow.
        #[arg(long, default_value = "skip")]
        overlap: String,
        /// After downtime, run once for the missed due times.
        #[arg(long)]
        catch_up: bool,
        /// Start up to this many seconds after the due time (0-3600).
        #[arg(long, default_value_t = 0)]
        jitter: i64,
        /// Create it paused.
        #[arg(long)]
        paused: bool,
    },
    /// Pause a schedule.
    #[command(after_help = "Example:\n  remora schedules pause nightly")]
    Pause { name: String },
    /// Resume a paused schedule (from now; missed times do not fire).
    #[command(after_help = "Example:\n  remora schedules resume nightly")]
    Resume { name: String },
    /// Delete a schedule.
    #[command(after_help = "Example:\n  remora schedules rm nightly")]
    Rm { name: String },
    /// The next run times (UTC).
    #[command(after_help = "Example:\n  remora schedules next nightly -n 10")]
    Next {
        name: String,
        #[arg(short = 'n', long, default_value_t = 5)]
        count: usize,
    },
}

pub async fn run(api: &Api, out: Output, c: SchedulesCmd) -> Result<i32> {
    match c {
        SchedulesCmd::List => {
            let v = api.get("/api/v1/schedules").await?;
            let mut t = table(&["NAME", "TEMPLATE", "WHEN", "ENABLED", "OVERLAP", "NEXT"]);
            for s in v.as_array().into_iter().flatten() {
                t.add_row(vec![
                    s["name"].as_str().unwrap_or("").to_string(),
                    s["template"].as_str().unwrap_or("-").to_string(),
                    s["description"].as_str().unwrap_or("").to_string(),
                    s["enabled"].to_string(),
                    s["overlap"].as_str().unwrap_or("").to_string(),
                    s["next_runs"][0].as_str().unwrap_or("-").to_string(),
                ]);
            }
            emit(out, &v, &Human::table(t));
        }
        SchedulesCmd::Create {
            name,
            template,
            cron,
            timezone,
            params,
            overlap,
            catch_up,
            jitter,
            paused,
        } => {
            let params = remora_domain::template::parse_kv(&params).map_err(anyhow::Error::msg)?;
            let v = api
                .post(
                    "/api/v1/schedules",
                    &json!({ "name": name, "template": template, "cron": cron, "timezone": timezone, "params": params, "overlap": overlap, "catch_up": catch_up, "jitter": jitter, "enabled": !paused }),
                )
                .await?;
            let line = format!(
                "schedule {} created: {}; next {}",
                v["name"].as_str().unwrap_or(""),
                v["description"].as_str().unwrap_or(""),
                v["next_runs"][0].as_str().unwrap_or("-")
            );
            emit(out, &v, &Human::line(line));
        }
        SchedulesCmd::Pause { name } => {
            let v = api
                .post(
                    &format!("/api/v1/schedules/{}/pause", enc(&name)),
                    &json!(null),
                )
                .await?;
            emit(out, &v, &Human::line(format!("schedule {name} paused")));
        }
        SchedulesCmd::Resume { name } => {
            let v = api
                .post(
                    &format!("/api/v1/schedules/{}/resume", enc(&name)),
                    &json!(null),
                )
                .await?;
            let next = v["next_runs"][0].as_str().unwrap_or("-").to_string();
            emit(
                out,
                &v,
                &Human::line(format!("schedule {name} resumed; next {next}")),
            );
        }
        SchedulesCmd::Rm { name } => {
            api.delete(&format!("/api/v1/schedules/{}", enc(&name)))
                .await?;
            emit(
                out,
                &json!({ "deleted": name }),
                &Human::line(format!("schedule {name} deleted")),
            );
        }
        SchedulesCmd::Next { name, count } => {
            let v = api
                .get(&format!(
                    "/api/v1/schedules/{}/next?count={count}",
                    enc(&name)
                ))
                .await?;
            let lines: Vec<String> = v
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(String::from))
                .collect();
            emit(out, &v, &Human::line(lines.join("\n")));
        }
    }
    Ok(0)
}
