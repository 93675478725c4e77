//! The rule that a queue reachable beyond this host needs a token, for the server and its clients.

use std::net::{IpAddr, SocketAddr};

/// Why a queue without a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} {addr} is not a loopback address and REMORA_QUEUE_TOKEN is not set: anyone who can \
     reach it could push, cancel and publish forged events. Set REMORA_QUEUE_TOKEN (the same \
     value on the queue, the API and every worker), e.g. `openssl rand -hex 32`, or use a \
     loopback address"
)]
pub struct TokenRequired {
    what: &'static str,
    addr: String,
}

/// For the server: listening on a non-loopback address needs a (non-empty) token.
pub fn check_listen(addr: SocketAddr, token: Option<&str>) -> Result<(), TokenRequired> {
    if addr.ip().is_loopback() || token.is_some_and(|t| !t.is_empty()) {
        return Ok(());
    }
    Err(TokenRequired {
        what: "the queue listens on",
        addr: addr.to_string(),
    })
}

/// For clients (API, worker): connecting to a queue that is not on loopback needs a token.
/// `addr` is `host:port`; `localhost` and loopback IPs count as local, every other name does not.
pub fn check_connect(addr: &str, token: Option<&str>) -> Result<(), TokenRequired> {
    if token.is_some_and(|t| !t.is_empty()) || is_local(addr) {
        return Ok(());
    }
    Err(TokenRequired {
        what: "the queue address",
        addr: addr.to_owned(),
    })
}

/// Why a client's queue address list was refused.
#[derive(Debug, thiserror::Error)]
pub enum AddrListError {
    #[error("REMORA_QUEUE_ADDR: {0}")]
    Parse(crate::client::ClientError),
    #[error(transparent)]
    TokenRequired(#[from] TokenRequired),
}

/// For clients given `REMORA_QUEUE_ADDR` (one address or a comma-separated list): the list parsed
/// (an error names the bad entry) and [`check_connect`] for every address.
pub fn check_connect_list(list: &str, token: Option<&str>) -> Result<Vec<String>, AddrListError> {
    let addrs = crate::client::parse_addrs(list).map_err(AddrListError::Parse)?;
    for a in &addrs {
        check_connect(a, token)?;
    }
    Ok(addrs)
}

fn is_local(addr: &str) -> bool {
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return sa.ip().is_loopback();
    }
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_address_follows_the_token_rule() {
        assert_eq!(
            check_connect_list("127.0.0.1:9000,localhost:9001", None).unwrap(),
            ["127.0.0.1:9000", "localhost:9001"]
        );
        let e = check_connect_list("127.0.0.1:9000,10.0.0.3:9000", None).unwrap_err();
        assert!(e.to_string().contains("10.0.0.3:9000"), "{e}");
        assert!(check_connect_list("127.0.0.1:9000,10.0.0.3:9000", Some("t")).is_ok());
        let e = check_connect_list("127.0.0.1:9000,", Some("t")).unwrap_err();
        assert!(e.to_string().starts_with("REMORA_QUEUE_ADDR: "), "{e}");
    }

    #[test]
    fn only_loopback_may_go_without_a_token() {
        for (addr, local) in [
            ("127.0.0.1:9000", true),
            ("127.0.0.2:9000", true),
            ("[::1]:9000", true),
            ("localhost:9000", true),
            ("LOCALHOST:1", true),
            ("0.0.0.0:9000", false),
            ("[::]:9000", false),
            ("10.1.2.3:9000", false),
            ("netqueue:9000", false),
            ("queue.example.com:9000", false),
        ] {
            assert_eq!(check_connect(addr, None).is_ok(), local, "{addr}");
            assert_eq!(
                check_connect(addr, Some("")).is_ok(),
                local,
                "{addr} empty token"
            );
            assert!(check_connect(addr, Some("t")).is_ok(), "{addr} with token");
            if let Ok(sa) = addr.parse::<SocketAddr>() {
                assert_eq!(check_listen(sa, None).is_ok(), local, "listen {addr}");
                assert!(check_listen(sa, Some("t")).is_ok());
            }
        }
        let e = check_listen("0.0.0.0:9000".parse().unwrap(), None).unwrap_err();
        assert!(e.to_string().contains("REMORA_QUEUE_TOKEN"), "{e}");
    }
}
