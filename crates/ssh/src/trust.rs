//! SSH certificates: which trusted CAs may vouch for a host (OpenSSH host
//! patterns), whether a presented host certificate is acceptable, and the
//! validity window of a user certificate checked before connecting.

use russh::keys::ssh_key::certificate::CertType;
use russh::keys::{Certificate, HashAlg, PublicKey};
use std::time::{SystemTime, UNIX_EPOCH};

/// A CA public key trusted to sign host certificates for hosts matching any
/// of `patterns` (OpenSSH `known_hosts` patterns: `*` and `?` wildcards, a
/// leading `!` negates; matched against the bare host name and against
/// `[host]:port`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrustedCa {
    /// The CA's public key line (`ssh-ed25519 AAAA… comment`).
    pub public_key: String,
    pub patterns: Vec<String>,
}

/// Parses a public key line (`type base64 [comment]`).
pub fn parse_public_key(line: &str) -> Result<PublicKey, String> {
    PublicKey::from_openssh(line.trim()).map_err(|e| format!("not an OpenSSH public key: {e}"))
}

/// Parses an OpenSSH certificate line (`ssh-ed25519-cert-v01@openssh.com AAAA…`).
pub fn parse_certificate(line: &str) -> Result<Certificate, String> {
    Certificate::from_openssh(line.trim()).map_err(|e| format!("not an OpenSSH certificate: {e}"))
}

/// OpenSSH wildcard match (`*` any run, `?` one character), case-insensitive.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether `patterns` (a CA's host patterns) cover `host` on `port`: some
/// positive pattern matches and no negated one does.
pub fn patterns_match(patterns: &[String], host: &str, port: u16) -> bool {
    let names = [host.to_string(), format!("[{host}]:{port}")];
    let mut matched = false;
    for p in patterns {
        let (neg, pat) = match p.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, p.as_str()),
        };
        if names.iter().any(|n| wildcard_match(pat, n)) {
            if neg {
                return false;
            }
            matched = true;
        }
    }
    matched
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Accepts a host certificate presented by `host` if one of `cas` (already
/// filtered to those whose patterns cover the host) signed it, it is a host
/// certificate, `host` is among its principals and it is valid now. The error
/// says why not.
pub fn check_host_certificate(
    cert: &Certificate,
    host: &str,
    cas: &[&TrustedCa],
) -> Result<(), String> {
    if cert.cert_type() != CertType::Host {
        return Err("the server presented a user certificate as its host key".into());
    }
    let signer = cert.signature_key().fingerprint(HashAlg::Sha256);
    let trusted = cas.iter().any(|ca| {
        parse_public_key(&ca.public_key)
            .map(|k| k.fingerprint(HashAlg::Sha256) == signer)
            .unwrap_or(false)
    });
    if !trusted {
        return Err(format!(
            "its host certificate is signed by {signer}, which is not a CA trusted for this host"
        ));
    }
    if cert.verify_signature().is_err() {
        return Err("its host certificate's signature does not verify".into());
    }
    let principals = cert.valid_principals();
    if !principals.is_empty() && !principals.iter().any(|p| p.eq_ignore_ascii_case(host)) {
        return Err(format!(
            "its host certificate is for {}, not {host}",
            principals.join(", ")
        ));
    }
    validity(cert)
}

/// `Ok` when `now` is inside the certificate's validity window.
pub fn validity(cert: &Certificate) -> Result<(), String> {
    let now = now_unix();
    if now < cert.valid_after() {
        return Err(format!(
            "the certificate is not valid before {}",
            unix_to_rfc3339(cert.valid_after())
        ));
    }
    if now >= cert.valid_before() {
        return Err(format!(
            "the certificate expired at {}",
            unix_to_rfc3339(cert.valid_before())
        ));
    }
    Ok(())
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (`u64::MAX`, OpenSSH's
/// "forever", is shown as `forever`).
pub fn unix_to_rfc3339(secs: u64) -> String {
    if secs == u64::MAX {
        return "forever".into();
    }
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_negation() {
        assert!(wildcard_match("*.example.com", "db1.example.com"));
        assert!(!wildcard_match("*.example.com", "example.org"));
        assert!(wildcard_match("10.231.?.2", "10.231.7.2"));
        assert!(!wildcard_match("10.231.?.2", "10.231.17.2"));
        assert!(wildcard_match("*", "anything"));
        let pats = vec!["*.example.com".to_string(), "!bad.example.com".to_string()];
        assert!(patterns_match(&pats, "db.example.com", 22));
        assert!(!patterns_match(&pats, "bad.example.com", 22));
        assert!(!patterns_match(&pats, "db.example.org", 22));
        assert!(patterns_match(
            &["[127.0.0.1]:*".to_string()],
            "127.0.0.1",
            2222
        ));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(unix_to_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(unix_to_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(unix_to_rfc3339(u64::MAX), "forever");
    }
}
