//! The stable machine codes of failures (a job's `error_code`, a server
//! check's), one snake_case string each.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why a job (or a server check) failed. The strings are a public contract
/// (API, CLI, stored rows): add codes, never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// TCP connect to the host failed.
    ConnectFailed,
    /// No SSH handshake (or authentication) within the connect timeout.
    ConnectTimeout,
    /// The host presented a key other than the pinned one.
    HostKeyMismatch,
    /// The server rejected every configured credential.
    AuthFailed,
    /// The stored private key cannot be used.
    BadKey,
    /// Any other SSH protocol failure.
    SshError,
    /// The host's certificate is not from a CA trusted for it (wrong CA,
    /// wrong principal, expired).
    HostKeyUntrusted,
    /// The stored user certificate is unreadable or outside its validity.
    BadCertificate,
    /// A jump host on the way failed (the message names it).
    JumpFailed,
    /// The job's server was deleted.
    ServerNotFound,
    /// The server's stored secrets cannot be decrypted.
    SecretUnreadable,
    /// Remora itself failed (database read).
    Internal,
    /// The command exited with a non-zero code.
    ExitNonzero,
    /// The command was killed by a signal.
    Signaled,
    /// The channel closed without an exit status or signal.
    NoExitStatus,
    /// The job ran past its timeout and was killed.
    TimedOut,
    /// Canceled on request.
    Canceled,
    /// Canceled because its worker's drain timeout ran out.
    DrainTimeout,
    /// The worker running the job stopped heartbeating.
    WorkerLost,
    /// Its batch stopped (fail threshold, or the batch was canceled) before or while it ran.
    BatchStopped,
    /// sudo refused the `become` (wrong or missing sudo password, user not in sudoers).
    BecomeFailed,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::ConnectFailed,
        ErrorCode::ConnectTimeout,
        ErrorCode::HostKeyMismatch,
        ErrorCode::AuthFailed,
        ErrorCode::BadKey,
        ErrorCode::SshError,
        ErrorCode::ServerNotFound,
        ErrorCode::SecretUnreadable,
        ErrorCode::Internal,
        ErrorCode::ExitNonzero,
        ErrorCode::Signaled,
        ErrorCode::NoExitStatus,
        ErrorCode::TimedOut,
        ErrorCode::Canceled,
        ErrorCode::DrainTimeout,
        ErrorCode::WorkerLost,
        ErrorCode::HostKeyUntrusted,
        ErrorCode::BadCertificate,
        ErrorCode::JumpFailed,
        ErrorCode::BatchStopped,
        ErrorCode::BecomeFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ConnectFailed => "connect_failed",
            ErrorCode::ConnectTimeout => "connect_timeout",
            ErrorCode::HostKeyMismatch => "host_key_mismatch",
            ErrorCode::AuthFailed => "auth_failed",
            ErrorCode::BadKey => "bad_key",
            ErrorCode::SshError => "ssh_error",
            ErrorCode::ServerNotFound => "server_not_found",
            ErrorCode::SecretUnreadable => "secret_unreadable",
            ErrorCode::Internal => "internal",
            ErrorCode::ExitNonzero => "exit_nonzero",
            ErrorCode::Signaled => "signaled",
            ErrorCode::NoExitStatus => "no_exit_status",
            ErrorCode::TimedOut => "timed_out",
            ErrorCode::Canceled => "canceled",
            ErrorCode::DrainTimeout => "drain_timeout",
            ErrorCode::WorkerLost => "worker_lost",
            ErrorCode::HostKeyUntrusted => "host_key_untrusted",
            ErrorCode::BadCertificate => "bad_certificate",
            ErrorCode::JumpFailed => "jump_failed",
            ErrorCode::BatchStopped => "batch_stopped",
            ErrorCode::BecomeFailed => "become_failed",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<ErrorCode> for String {
    fn from(c: ErrorCode) -> String {
        c.as_str().to_string()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown error code `{0}`")]
pub struct UnknownErrorCode(pub String);

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownErrorCode(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The strings are stored and returned by the API: spelled out here so a
    /// rename fails this test.
    #[test]
    fn strings_are_stable() {
        let want = [
            "connect_failed",
            "connect_timeout",
            "host_key_mismatch",
            "auth_failed",
            "bad_key",
            "ssh_error",
            "server_not_found",
            "secret_unreadable",
            "internal",
            "exit_nonzero",
            "signaled",
            "no_exit_status",
            "timed_out",
            "canceled",
            "drain_timeout",
            "worker_lost",
            "host_key_untrusted",
            "bad_certificate",
            "jump_failed",
            "batch_stopped",
            "become_failed",
        ];
        let got: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(got, want);
        for c in ErrorCode::ALL {
            assert_eq!(c.to_string(), c.as_str());
            assert_eq!(c.as_str().parse::<ErrorCode>().unwrap(), c);
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
            assert_eq!(
                serde_json::from_str::<ErrorCode>(&format!("\"{c}\"")).unwrap(),
                c
            );
        }
        assert!("timed out".parse::<ErrorCode>().is_err());
    }
}
