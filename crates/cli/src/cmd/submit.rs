//! `remora submit`: a command (after `--`) or a script to one server, several, or a tag;
//! prints the job ids or follows them.

use crate::client::{Api, Reply};
use crate::follow;
use crate::render::{emit, Human, Output, View};
use crate::responses::Submitted;
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::io::Read;

#[derive(clap::Args)]
pub struct SubmitArgs {
    /// Target server name or id (repeatable).
    #[arg(long = "server", short = 's')]
    servers: Vec<String>,
    /// Target every active server with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Run this script file (`-` reads stdin); arguments after `--` are its args.
    #[arg(long)]
    script: Option<String>,
    /// Shell for --script.
    #[arg(long)]
    shell: Option<String>,
    /// Seconds before the job is killed (0 = no limit).
    #[arg(long)]
    timeout: Option<i64>,
    /// 1–10, higher runs first.
    #[arg(long)]
    priority: Option<i64>,
    /// Batch: hosts running at once, a count or a share of the targets (`10%`).
    #[arg(long, value_name = "N|N%")]
    max_parallel: Option<String>,
    /// Batch: after this many (or this share of) hosts failed or timed out, apply --on-fail.
    #[arg(long, value_name = "N|N%")]
    fail_threshold: Option<String>,
    /// Batch: at the fail threshold, `stop` starts no more hosts (running ones finish),
    /// `abort` also cancels the running ones.
    #[arg(long, value_enum, value_name = "stop|abort")]
    on_fail: Option<OnFailArg>,
    /// One server: stream its output and exit with its exit code. A batch: a progress bar
    /// with counts, then the output grouped across hosts; exit 0 only if every host completed.
    #[arg(long, short)]
    follow: bool,
    /// With --follow on a batch: stream every host's output live, prefixed `[server]`,
    /// instead of the progress bar and grouped summary.
    #[arg(long, requires = "follow")]
    stream: bool,
    /// The command and its arguments (after `--`).
    #[arg(last = true)]
    command: Vec<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum OnFailArg {
    Stop,
    Abort,
}

/// A batch limit as the API takes it: a number, or the text of a share (`"10%"`).
fn limit(v: &str) -> serde_json::Value {
    match v.trim().parse::<u64>() {
        Ok(n) => json!(n),
        Err(_) => json!(v.trim()),
    }
}

pub async fn run(api: &Api, out: Output, a: SubmitArgs) -> Result<i32> {
    let mut body = json!({});
    match (a.servers.len(), &a.tag) {
        (0, None) => bail!("give --server NAME (repeatable) or --tag TAG"),
        (_, Some(_)) if !a.servers.is_empty() => bail!("give either --server or --tag, not both"),
        (1, None) => body["server_id"] = json!(a.servers[0]),
        (_, None) => body["server_ids"] = json!(a.servers),
        (_, Some(t)) => body["tag"] = json!(t),
    }
    if let Some(t) = a.timeout {
        body["timeout"] = json!(t);
    }
    if let Some(p) = a.priority {
        body["priority"] = json!(p);
    }
    // A single server takes no batch policy: the API says so (422) rather than the CLI.
    if let Some(m) = &a.max_parallel {
        body["max_parallel"] = limit(m);
    }
    if let Some(f) = &a.fail_threshold {
        body["fail_threshold"] = limit(f);
    }
    if let Some(o) = a.on_fail {
        body["on_fail_threshold"] = json!(match o {
            OnFailArg::Stop => "stop",
            OnFailArg::Abort => "abort",
        });
    }
    let path = if let Some(script) = &a.script {
        let text = if script == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the script from stdin")?;
            s
        } else {
            std::fs::read_to_string(script).with_context(|| format!("reading script {script}"))?
        };
        body["script"] = json!(text);
        body["args"] = json!(a.command);
        if let Some(sh) = &a.shell {
            body["shell"] = json!(sh);
        }
        "/api/v1/jobs/script"
    } else {
        let Some((cmd, args)) = a.command.split_first() else {
            bail!("give the command after `--`, e.g. `remora submit --server web1 -- uptime`");
        };
        body["command"] = json!(cmd);
        body["args"] = json!(args);
        "/api/v1/jobs"
    };
    let r: Reply<Submitted> = api.post_as(path, &body).await?;
    if !a.follow {
        emit(out, &r.raw, &r.body);
        return Ok(0);
    }
    if let (Some(batch), false) = (r.body.batch_id(), a.stream) {
        eprintln!("batch {batch}: {} host(s)", r.body.jobs().len());
        return super::batches::follow(api, out, batch).await;
    }
    let jobs = r.body.jobs();
    // Several jobs' lines are prefixed with their server's name (its id if the lookup fails).
    let names = if jobs.len() > 1 {
        super::server_names(api).await.unwrap_or_default()
    } else {
        Default::default()
    };
    let targets = jobs
        .iter()
        .map(|j| {
            let label = names
                .get(&j.server_id)
                .cloned()
                .unwrap_or_else(|| j.server_id.clone());
            (j.id.clone(), label)
        })
        .collect();
    follow::follow_jobs(api, targets).await
}

/// Without `--follow`: the new jobs' ids, one a line.
impl View for Submitted {
    fn human(&self) -> Human {
        Human {
            stdout: self.jobs().iter().map(|j| format!("{}\n", j.id)).collect(),
            stderr: String::new(),
        }
    }
}
