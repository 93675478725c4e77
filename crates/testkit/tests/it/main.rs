//! Integration tests of the testkit fixtures against a real sshd and PostgreSQL.

mod pg;
mod sshd;
