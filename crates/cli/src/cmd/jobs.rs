//! `remora jobs …`, `logs`, `cancel`, `duplicate` and `rerun`: read jobs and
//! act on one; how a job is shown in a table row lives here, in one place.

use crate::client::{enc, Api, Reply};
use crate::follow;
use crate::render::{
    ago, clip, duration, emit, fields, opt, paint_status, table, Human, Output, View,
};
use crate::responses::{JobList, Logs};
use anyhow::Result;
use clap::Subcommand;
use remora_domain::{Job, JobSpec};
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Subcommand)]
pub enum JobsCmd {
    /// List jobs, newest first.
    #[command(after_help = "Example:\n  remora jobs list --status running --limit 50")]
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        server: Option<String>,
        /// Jobs whose id, command or script contains this text (case-insensitive).
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long, default_value_t = 1)]
        page: i64,
    },
    /// Show one job (with the template, version and schedule it came from, if any).
    #[command(
        visible_alias = "show",
        after_help = "Example:\n  remora jobs get 0199…"
    )]
    Get { id: String },
}

pub async fn run(api: &Api, out: Output, c: JobsCmd) -> Result<i32> {
    match c {
        JobsCmd::List {
            status,
            server,
            search,
            limit,
            page,
        } => {
            let mut q = format!("/api/v1/jobs?limit={limit}&page={page}");
            if let Some(st) = status {
                q.push_str(&format!("&status={}", enc(&st)));
            }
            if let Some(sv) = server {
                let srv = super::resolve_server(api, &sv).await?.body;
                q.push_str(&format!("&server_id={}", enc(&srv.id)));
            }
            if let Some(se) = search {
                q.push_str(&format!("&search={}", enc(&se)));
            }
            let r: Reply<JobList> = api.get_as(&q).await?;
            let names = match out {
                Output::Table => super::server_names(api).await?,
                Output::Json => HashMap::new(),
            };
            emit(
                out,
                &r.raw,
                &ListTable {
                    list: &r.body,
                    names: &names,
                },
            );
            Ok(0)
        }
        JobsCmd::Get { id } => {
            let r: Reply<Job> = api.get_as(&format!("/api/v1/jobs/{}", enc(&id))).await?;
            emit(out, &r.raw, &Detail(&r.body));
            Ok(0)
        }
    }
}

/// `remora logs`: the stored output, or the live stream with `--follow`.
pub async fn logs(api: &Api, out: Output, id: String, follow: bool) -> Result<i32> {
    if follow {
        let j: Job = api
            .get_as(&format!("/api/v1/jobs/{}", enc(&id)))
            .await?
            .body;
        return follow::follow_jobs(api, vec![(j.id.clone(), j.server_id.clone())]).await;
    }
    let r: Reply<Logs> = api
        .get_as(&format!("/api/v1/jobs/{}/logs", enc(&id)))
        .await?;
    emit(out, &r.raw, &r.body);
    Ok(0)
}

pub async fn cancel(api: &Api, out: Output, id: String) -> Result<i32> {
    let r: Reply<Job> = api
        .post_as(&format!("/api/v1/jobs/{}/cancel", enc(&id)), &Value::Null)
        .await?;
    emit(
        out,
        &r.raw,
        &Human::line(format!(
            "cancel requested for job {} (status now {})",
            r.body.id, r.body.status
        )),
    );
    Ok(0)
}

pub async fn duplicate(
    api: &Api,
    out: Output,
    id: String,
    server: Option<String>,
    timeout: Option<i64>,
    priority: Option<i64>,
    follow: bool,
) -> Result<i32> {
    let mut body = json!({});
    if let Some(v) = server {
        body["server_id"] = json!(v);
    }
    if let Some(v) = timeout {
        body["timeout"] = json!(v);
    }
    if let Some(v) = priority {
        body["priority"] = json!(v);
    }
    let r = api
        .post_as(&format!("/api/v1/jobs/{}/duplicate", enc(&id)), &body)
        .await?;
    started(api, out, r, follow).await
}

pub async fn rerun(api: &Api, out: Output, id: String, follow: bool) -> Result<i32> {
    let r = api
        .post_as(&format!("/api/v1/jobs/{}/rerun", enc(&id)), &Value::Null)
        .await?;
    started(api, out, r, follow).await
}

/// Print a newly created job's id, or follow it.
async fn started(api: &Api, out: Output, r: Reply<Job>, follow: bool) -> Result<i32> {
    if follow {
        let j = r.body;
        return follow::follow_jobs(api, vec![(j.id, j.server_id)]).await;
    }
    emit(out, &r.raw, &Human::line(&r.body.id));
    Ok(0)
}

/// What a job runs, for a table cell: the command line, or `(script)`.
pub fn what_it_runs(j: &Job) -> String {
    match &j.spec {
        JobSpec::Command { command, args } => std::iter::once(command.as_str())
            .chain(args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        JobSpec::Script { .. } => "(script)".into(),
    }
}

/// `jobs list`: a page of jobs with their servers' names, and the page footer.
struct ListTable<'a> {
    list: &'a JobList,
    names: &'a HashMap<String, String>,
}

impl View for ListTable<'_> {
    fn human(&self) -> Human {
        let mut t = table(&[
            "ID", "STATUS", "SERVER", "COMMAND", "EXIT", "DURATION", "CREATED",
        ]);
        for j in &self.list.jobs {
            t.add_row(vec![
                j.id.clone(),
                paint_status(j.status.as_str()),
                self.names
                    .get(&j.server_id)
                    .cloned()
                    .unwrap_or_else(|| j.server_id.clone()),
                clip(what_it_runs(j), 40),
                opt(&j.exit_code),
                duration(j.started_at, j.finished_at),
                ago(j.created_at),
            ]);
        }
        let p = &self.list.pagination;
        Human::table(t).note(format!(
            "page {} of {} ({} jobs)",
            p.page,
            p.total_pages.max(1),
            p.total
        ))
    }
}

/// `jobs get`: one job, field by field, and how long it ran.
struct Detail<'a>(&'a Job);

impl View for Detail<'_> {
    fn human(&self) -> Human {
        let mut t = fields(
            self.0,
            &[
                "id",
                "status",
                "kind",
                "command",
                "args",
                "shell",
                "server_id",
                "batch_id",
                "priority",
                "timeout",
                "exit_code",
                "exit_signal",
                "error",
                "attempt",
                "worker_id",
                "created_at",
                "started_at",
                "finished_at",
                "stdout_bytes",
                "stderr_bytes",
                "truncated",
            ],
        );
        t.add_row(vec![
            "duration".to_string(),
            duration(self.0.started_at, self.0.finished_at),
        ]);
        if let Some(tid) = &self.0.template_id {
            let version = self.0.template_version.map(|v| format!(" v{v}"));
            t.add_row(vec![
                "template".to_string(),
                format!("{tid}{}", version.unwrap_or_default()),
            ]);
        }
        if let Some(sid) = &self.0.schedule_id {
            t.add_row(vec!["schedule".to_string(), sid.clone()]);
        }
        Human::table(t)
    }
}

impl View for Logs {
    fn human(&self) -> Human {
        let mut h = Human {
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
        };
        if self.truncated {
            h = h.note("\n[remora: output truncated at the per-job cap]");
        }
        h
    }
}
