//! Integration tests of the testkit fixtures against a real sshd, Dropbear, network namespaces
//! and PostgreSQL, driven with the system `ssh` client.

mod busybox;
mod certs;
mod common;
mod dropbear;
mod netns;
mod pam;
mod pg;
mod shells;
mod sshd;
mod sudo;
