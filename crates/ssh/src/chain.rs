//! A stored server's jump chain: follow `jump_server_id` from the server to
//! its bastions (each with its own secrets and pin), refusing unknown ids,
//! loops and chains deeper than the configured limit.

use crate::{target_of, SshError, Target};
use remora_domain::Server;
use remora_store::{Store, Vault};

/// Default for `REMORA_MAX_JUMP_DEPTH`: jump hosts on the way to one server.
pub const DEFAULT_MAX_JUMP_DEPTH: usize = 3;

/// `REMORA_MAX_JUMP_DEPTH` (jump hosts in one chain), default
/// [`DEFAULT_MAX_JUMP_DEPTH`]; an unparsable value is an error.
pub fn max_jump_depth_from_env() -> Result<usize, String> {
    match std::env::var("REMORA_MAX_JUMP_DEPTH") {
        Err(_) => Ok(DEFAULT_MAX_JUMP_DEPTH),
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=16).contains(n))
            .ok_or_else(|| format!("REMORA_MAX_JUMP_DEPTH={v}: give a number from 1 to 16")),
    }
}

/// Why a jump chain cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainError {
    /// A `jump_server_id` names no server.
    Unknown(String),
    /// The chain comes back to a server already on it.
    Loop(Vec<String>),
    /// More than the allowed number of hops.
    TooDeep { max: usize },
}

impl std::fmt::Display for ChainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainError::Unknown(id) => write!(f, "jump server {id} does not exist"),
            ChainError::Loop(names) => {
                write!(f, "the jump chain loops: {}", names.join(" → "))
            }
            ChainError::TooDeep { max } => write!(
                f,
                "the jump chain is longer than {max} hops (REMORA_MAX_JUMP_DEPTH)"
            ),
        }
    }
}

/// The servers on the way to a server whose jump host is `first_jump`
/// (`start` = the server's own id and name, if it exists), first hop (reached
/// directly) first.
pub async fn jump_servers(
    store: &Store,
    start: Option<(&str, &str)>,
    first_jump: Option<&str>,
    max_depth: usize,
) -> Result<Result<Vec<Server>, ChainError>, remora_store::StoreError> {
    let mut seen: Vec<(String, String)> = start
        .map(|(id, name)| vec![(id.to_string(), name.to_string())])
        .unwrap_or_default();
    let mut hops: Vec<Server> = Vec::new();
    let mut next = first_jump.map(str::to_string);
    while let Some(id) = next {
        if let Some(pos) = seen.iter().position(|(s, _)| *s == id) {
            let mut names: Vec<String> = seen[pos..].iter().map(|(_, n)| n.clone()).collect();
            names.push(seen[pos].1.clone());
            return Ok(Err(ChainError::Loop(names)));
        }
        if hops.len() >= max_depth {
            return Ok(Err(ChainError::TooDeep { max: max_depth }));
        }
        let Some(s) = store.get_server(&id).await? else {
            return Ok(Err(ChainError::Unknown(id)));
        };
        seen.push((s.id.clone(), s.name.clone()));
        next = s.jump_server_id.clone();
        hops.push(s);
    }
    hops.reverse();
    Ok(Ok(hops))
}

/// The connection target of a stored server with its jump chain, every hop
/// with its own decrypted secrets and pin. Failures of the chain are
/// [`SshError::JumpFailed`].
pub async fn target_with_jumps(
    store: &Store,
    vault: &Vault,
    server: &Server,
    secrets: remora_store::PlainSecrets,
    max_depth: usize,
) -> Result<Target, SshError> {
    let mut target = target_of(server, secrets);
    // Every trusted CA goes in; each hop uses those whose patterns cover it.
    // Read at every connection, so removing a CA counts from the next one.
    let cas = trusted_cas(store).await?;
    target.trusted_cas = cas.clone();
    let Some(first) = server.jump_server_id.as_deref() else {
        return Ok(target);
    };
    let fail = |reason: String| SshError::JumpFailed {
        hop: first.to_string(),
        reason,
    };
    let hops = jump_servers(
        store,
        Some((&server.id, &server.name)),
        Some(first),
        max_depth,
    )
    .await
    .map_err(|e| fail(format!("reading the jump chain failed: {e}")))?
    .map_err(|e| fail(e.to_string()))?;
    for hop in hops {
        let s = store
            .open_secrets(&hop.id, vault)
            .await
            .map_err(|e| fail(format!("{}: {e}", hop.name)))?
            .ok_or_else(|| fail(format!("jump server {} was deleted", hop.name)))?;
        let mut t = target_of(&hop, s);
        t.trusted_cas = cas.clone();
        target.jumps.push(t);
    }
    Ok(target)
}

/// The trusted CAs stored through `/trusted-cas`, as the SSH client takes them.
pub async fn trusted_cas(store: &Store) -> Result<Vec<crate::TrustedCa>, SshError> {
    let rows = store
        .list_trusted_cas()
        .await
        .map_err(|e| SshError::HostKeyUntrusted(format!("reading the trusted CAs failed: {e}")))?;
    Ok(rows
        .into_iter()
        .map(|r| crate::TrustedCa {
            public_key: r.public_key,
            patterns: r.patterns,
        })
        .collect())
}
