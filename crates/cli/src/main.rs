//! `remora`: the command-line client for every API action, plus `remora up`
//! (API, queue and worker in one process). This file holds the top-level
//! arguments and the dispatch; each command group lives in `cmd/`.

mod client;
mod cmd;
mod follow;
mod render;
mod responses;
mod up;

use anyhow::Result;
use clap::{Parser, Subcommand};
use client::Api;
use render::Output;

#[derive(Parser)]
#[command(
    name = "remora",
    version,
    about = "Remora: run commands and scripts on your SSH servers",
    after_help = "Examples:\n  remora servers add web1 --host 10.0.0.5 --user deploy --key-file ~/.ssh/id_ed25519\n  remora submit --server web1 --follow -- uptime\n  remora jobs list --status failed"
)]
struct Cli {
    /// API address.
    #[arg(long, global = true, env = "REMORA_API_URL")]
    url: Option<String>,
    /// API token.
    #[arg(long, global = true, env = "REMORA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Saved profile to use (see `remora login`).
    #[arg(long, global = true, env = "REMORA_PROFILE")]
    profile: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value = "table")]
    output: Output,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Save an API URL and token as a profile.
    #[command(
        after_help = "Example:\n  remora login --url http://ops:8080 --token rmr_… --name prod"
    )]
    Login {
        /// Profile name.
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// Manage servers.
    #[command(subcommand)]
    Servers(cmd::servers::ServersCmd),
    /// Submit a command (after `--`) or a script to one or more servers.
    #[command(
        after_help = "Examples:\n  remora submit --server web1 -- df -h /\n  remora submit --tag web --max-parallel 10% --fail-threshold 3 --on-fail stop --follow -- systemctl restart nginx\n  remora submit --server web1 --script deploy.sh --follow -- v1.2.3\n\n--follow exit codes: the job's exit code (one server); 124 timed out; 130 canceled;\n1 failed without an exit code; 2 when a second Ctrl-C detached.\nSeveral servers (a batch): 0 if every host completed, else 1; 3 when the request failed\n(bad arguments, API error or unreachable)."
    )]
    Submit(cmd::submit::SubmitArgs),
    /// List and read jobs.
    #[command(subcommand)]
    Jobs(cmd::jobs::JobsCmd),
    /// Print a job's stored output (stdout to stdout, stderr to stderr).
    #[command(after_help = "Example:\n  remora logs 0199… --follow")]
    Logs {
        id: String,
        /// Stream until the job ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// Cancel a job (its remote process tree is killed).
    #[command(after_help = "Example:\n  remora cancel 0199…")]
    Cancel { id: String },
    /// Run a job again, optionally elsewhere or with another timeout/priority.
    #[command(after_help = "Example:\n  remora duplicate 0199… --server web2 --priority 9")]
    Duplicate {
        id: String,
        #[arg(long)]
        server: Option<String>,
        #[arg(long)]
        timeout: Option<i64>,
        #[arg(long)]
        priority: Option<i64>,
        /// Stream output and exit with the job's exit code.
        #[arg(long, short)]
        follow: bool,
    },
    /// Run a finished job again, unchanged.
    #[command(after_help = "Example:\n  remora rerun 0199… --follow")]
    Rerun {
        id: String,
        #[arg(long, short)]
        follow: bool,
    },
    /// A multi-server submission: its grid, grouped output, cancel, rerun.
    #[command(
        after_help = "Examples:\n  remora batches 0199…                  # per-server grid\n  remora batches 0199… --groups         # output grouped across hosts\n  remora batches 0199… --failed         # only hosts that did not complete\n  remora batches cancel 0199…\n  remora batches rerun 0199… --only failed --follow\n\nExit codes: 0 running or every host completed; 1 the batch ended otherwise;\n3 the request failed (bad arguments, API error or unreachable)."
    )]
    Batches(cmd::batches::BatchesArgs),
    /// Manage uploaded private keys.
    #[command(subcommand)]
    Pem(cmd::pem::PemCmd),
    /// Keys and passwords shared by servers (secrets from files or stdin).
    #[command(subcommand)]
    Credentials(cmd::credentials::CredentialsCmd),
    /// SSH CAs trusted for host certificates.
    #[command(subcommand, name = "trusted-cas")]
    TrustedCas(cmd::credentials::TrustedCasCmd),
    /// Manage API tokens (admin).
    #[command(subcommand)]
    Tokens(cmd::tokens::TokensCmd),
    /// Saved jobs with typed parameters: list, show, run.
    #[command(subcommand)]
    Templates(cmd::templates::TemplatesCmd),
    /// Templates run on a cron expression in a time zone.
    #[command(subcommand)]
    Schedules(cmd::schedules::SchedulesCmd),
    /// Webhook and email notification targets and their delivery log.
    #[command(subcommand)]
    Notifications(cmd::notifications::NotificationsCmd),
    /// The retention policy of finished jobs and their output; run a pass now.
    #[command(subcommand)]
    Retention(cmd::retention::RetentionCmd),
    /// List workers.
    #[command(after_help = "Example:\n  remora workers")]
    Workers,
    /// Run API, queue and worker in one process (SQLite under ./data).
    #[command(after_help = "Example:\n  remora up --demo")]
    Up(Box<up::UpArgs>),
    /// Re-encrypt every stored secret under a new master key (run on the API host; then restart
    /// the API and the workers with the new key).
    #[command(
        after_help = "Examples:\n  remora rekey                      # key in ./data/master.key: replaced, old one kept\n  REMORA_MASTER_KEY=… remora rekey  # prints the new key to set everywhere"
    )]
    Rekey(Box<cmd::rekey::RekeyArgs>),
    /// Print shell completions.
    #[command(after_help = "Example:\n  remora completions bash > /etc/bash_completion.d/remora")]
    Completions { shell: clap_complete::Shell },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    // The batch commands keep 1 for "some host did not complete", so a failed request
    // needs its own code there; elsewhere a failure has always been 1.
    let failed = match cli.cmd {
        Cmd::Submit(_) | Cmd::Batches(_) => cmd::batches::EXIT_REQUEST_FAILED,
        _ => 1,
    };
    let code = match run(cli).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            failed
        }
    };
    std::process::exit(code);
}

async fn run(cli: Cli) -> Result<i32> {
    let api = Api::new(cli.url.clone(), cli.token.clone(), cli.profile.as_deref());
    let out = cli.output;
    match cli.cmd {
        Cmd::Up(args) => up::run(*args).await.map(|_| 0),
        Cmd::Rekey(args) => cmd::rekey::run(*args).await,
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "remora", &mut std::io::stdout());
            Ok(0)
        }
        Cmd::Login { name } => cmd::login::run(&api, cli.url, cli.token, name).await,
        Cmd::Servers(c) => cmd::servers::run(&api, out, c).await,
        Cmd::Submit(a) => cmd::submit::run(&api, out, a).await,
        Cmd::Jobs(c) => cmd::jobs::run(&api, out, c).await,
        Cmd::Logs { id, follow } => cmd::jobs::logs(&api, out, id, follow).await,
        Cmd::Cancel { id } => cmd::jobs::cancel(&api, out, id).await,
        Cmd::Duplicate {
            id,
            server,
            timeout,
            priority,
            follow,
        } => cmd::jobs::duplicate(&api, out, id, server, timeout, priority, follow).await,
        Cmd::Rerun { id, follow } => cmd::jobs::rerun(&api, out, id, follow).await,
        Cmd::Batches(a) => cmd::batches::run(&api, out, a).await,
        Cmd::Pem(c) => cmd::pem::run(&api, out, c).await,
        Cmd::Credentials(c) => cmd::credentials::run(&api, out, c).await,
        Cmd::TrustedCas(c) => cmd::credentials::run_cas(&api, out, c).await,
        Cmd::Tokens(c) => cmd::tokens::run(&api, out, c).await,
        Cmd::Templates(c) => cmd::templates::run(&api, out, c).await,
        Cmd::Schedules(c) => cmd::schedules::run(&api, out, c).await,
        Cmd::Notifications(c) => cmd::notifications::run(&api, out, c).await,
        Cmd::Retention(c) => cmd::retention::run(&api, out, c).await,
        Cmd::Workers => cmd::workers::run(&api, out).await,
    }
}
