//! End-to-end tests: HTTP API → queue → worker → real OpenSSH sshd →
//! database → API and CLI.

mod api;
mod cli;
mod stack;
mod worker;
mod api_more;
mod worker_more;
mod openapi;
mod cli_more;
mod logs_secrets;
