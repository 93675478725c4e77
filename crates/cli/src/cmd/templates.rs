//! `remora templates …`: list, show and run saved job templates.

use crate::client::{enc, Api};
use crate::render::{emit, table, Human, Output};
use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum TemplatesCmd {
    /// List templates (current versions).
    #[command(after_help = "Example:\n  remora templates list")]
    List,
    /// Show a template: what it runs, its parameters and targets.
    #[command(after_help = "Example:\n  remora templates show deploy --version 2")]
    Show {
        /// Template id or name.
        name: String,
        /// A past version (default: the current one).
        #[arg(long)]
        version: Option<i64>,
    },
    /// Run a template. Values reach the host only as REMORA_PARAM_<NAME> environment variables.
    #[command(
        after_help = "Example:\n  remora templates run deploy -p ref=v1.2 -p dry_run=true --tag web"
    )]
    Run {
        /// Template id or name.
        name: String,
        /// A parameter value, key=value (repeatable).
        #[arg(short = 'p', long = "param")]
        params: Vec<String>,
        /// Run on these servers instead of the template's targets (repeatable).
        #[arg(long = "server")]
        servers: Vec<String>,
        /// Run on every active server with this tag instead of the template's targets.
        #[arg(long)]
        tag: Option<String>,
    },
}

pub async fn run(api: &Api, out: Output, c: TemplatesCmd) -> Result<i32> {
    match c {
        TemplatesCmd::List => {
            let v = api.get("/api/v1/templates").await?;
            let mut t = table(&["NAME", "VERSION", "RUNS", "PARAMS", "DESCRIPTION"]);
            for x in v.as_array().into_iter().flatten() {
                let params: Vec<String> = x["params"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        format!(
                            "{}:{}",
                            p["name"].as_str().unwrap_or(""),
                            p["type"].as_str().unwrap_or("")
                        )
                    })
                    .collect();
                t.add_row(vec![
                    x["name"].as_str().unwrap_or("").to_string(),
                    x["version"].to_string(),
                    x["command"]
                        .as_str()
                        .map(|_| "command")
                        .unwrap_or("script")
                        .to_string(),
                    params.join(" "),
                    x["description"].as_str().unwrap_or("").to_string(),
                ]);
            }
            emit(out, &v, &Human::table(t));
        }
        TemplatesCmd::Show { name, version } => {
            let q = version.map(|v| format!("?version={v}")).unwrap_or_default();
            let v = api
                .get(&format!("/api/v1/templates/{}{q}", enc(&name)))
                .await?;
            let text = serde_json::to_string_pretty(&v).unwrap_or_default();
            emit(out, &v, &Human::line(text));
        }
        TemplatesCmd::Run {
            name,
            params,
            servers,
            tag,
        } => {
            let params = remora_domain::template::parse_kv(&params).map_err(anyhow::Error::msg)?;
            let mut body = json!({ "params": params });
            if !servers.is_empty() || tag.is_some() {
                body["targets"] = json!({ "servers": servers, "tag": tag });
            }
            let v: Value = api
                .post(&format!("/api/v1/templates/{}/run", enc(&name)), &body)
                .await?;
            let line = match v["id"].as_str() {
                Some(id) => format!("job {id} queued"),
                None => format!(
                    "batch {} queued ({} jobs)",
                    v["batch_id"].as_str().unwrap_or("-"),
                    v["jobs"].as_array().map_or(0, |j| j.len())
                ),
            };
            emit(out, &v, &Human::line(line));
        }
    }
    Ok(0)
}
