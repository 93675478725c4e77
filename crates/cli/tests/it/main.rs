//! End-to-end tests: HTTP API → queue → worker → real OpenSSH sshd →
//! database → API and CLI.

mod affinity;
mod any_shell;
mod api;
mod api_more;
mod batches;
mod cli;
mod cli_batches;
mod cli_more;
mod credentials;
mod failover;
mod group_commit;
mod hooks;
mod hostile;
mod hostkeys;
mod import;
mod job_options;
mod jump;
mod logs_secrets;
mod notify_e2e;
mod openapi;
mod outage;
mod retention_cli;
mod server_list;
mod stack;
mod templates;
mod worker;
mod worker_more;
