//! `POST /servers/import`: an inventory file (CSV, ssh_config, Ansible, known_hosts) turned into
//! server creates, updates and host-key pins, reported per row and applied in one transaction.

pub mod parse;
#[cfg(test)]
mod parse_tests;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::servers::{validate_new, CreateServer};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use parse::{HostRow, LineError, Parsed};
use remora_domain::Server;
use remora_store::{ImportOp, NewServer};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(import))
}

/// An inventory to import.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// `csv`, `ssh_config`, `ansible` (INI or YAML, detected), `ansible_ini`, `ansible_yaml` or
    /// `known_hosts`.
    pub format: String,
    /// The file's text.
    pub content: String,
    /// Report what would change and write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Fields for every host the file does not set (`user`, `port`, `tags` — added to the
    /// file's — and the credential fields of a server create: `credential_id`, `password`,
    /// `private_key`, `passphrase`, `pem_file_id`, `sudo_password`, `auth_type`,
    /// `max_concurrency`). Credentials apply to
    /// servers the import creates; existing servers keep theirs.
    #[serde(default)]
    pub defaults: Option<CreateServer>,
}

/// A 422 of the import: the result with its line errors (nothing applied), or the usual error
/// body when the request itself cannot be read.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ImportRefusal {
    Lines(ImportResult),
    Error(crate::openapi::ErrorBody),
}

/// One host (or, for `known_hosts`, one server) of the import and what happens to it.
#[derive(Serialize, Clone, utoipa::ToSchema)]
pub struct ImportRow {
    /// Line of the file the row comes from.
    pub line: usize,
    pub name: String,
    /// `create`, `update`, `unchanged` or `skip`.
    pub action: String,
    /// The server's id (chosen now for a server to create).
    pub server_id: Option<String>,
    /// What changes, or why nothing does; notes such as an `IdentityFile` the server cannot read.
    pub reasons: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ImportResult {
    pub format: String,
    pub dry_run: bool,
    /// Whether the changes were written (false on a dry run and when there are errors).
    pub applied: bool,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped: usize,
    pub rows: Vec<ImportRow>,
    /// Problems that stop the import (nothing is applied while there is one), with line numbers.
    pub errors: Vec<LineError>,
    /// Lines read but not imported (e.g. `Match` blocks, `@cert-authority` lines).
    pub warnings: Vec<LineError>,
}

impl IntoResponse for ImportResult {
    fn into_response(self) -> Response {
        let status = if self.errors.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        (status, Json(self)).into_response()
    }
}

fn parse_format(format: &str, content: &str) -> Result<(&'static str, Parsed), ApiError> {
    Ok(match format {
        "csv" => ("csv", parse::csv(content)),
        "ssh_config" | "ssh-config" | "openssh" => ("ssh_config", parse::ssh_config(content)),
        "ansible_ini" => ("ansible_ini", parse::ansible_ini(content)),
        "ansible_yaml" => ("ansible_yaml", parse::ansible_yaml(content)),
        "ansible" => {
            let first = content
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
                .unwrap_or("");
            if first.starts_with('[') || (!first.ends_with(':') && first != "---") {
                ("ansible_ini", parse::ansible_ini(content))
            } else {
                ("ansible_yaml", parse::ansible_yaml(content))
            }
        }
        "known_hosts" | "known-hosts" => ("known_hosts", parse::known_hosts(content)),
        other => {
            return Err(ApiError::invalid(
                "format",
                format!("unknown format `{other}`: use csv, ssh_config, ansible, ansible_ini, ansible_yaml or known_hosts"),
            ))
        }
    })
}

/// Import servers from an inventory file (operator; dry runs too, as a write-shaped request).
/// Rows become the same input as `POST /servers`; a name that exists is updated (hostname, port,
/// user, tags added, jump host) and otherwise left alone; `known_hosts` pins the keys of existing
/// servers. Any error (reported with its line) applies nothing; a second import of the same file
/// changes nothing. At most `REMORA_MAX_IMPORT_BYTES` of content and `REMORA_MAX_BATCH_HOSTS` hosts.
#[utoipa::path(post, operation_id = "import_servers", path = "/servers/import", tag = "servers", request_body = ImportRequest, responses((status = 200, body = ImportResult), (status = 422, body = ImportRefusal, description = "Errors (with line numbers; nothing applied), or a body that is not an import request"), (status = 413, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn import(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<ImportRequest>,
) -> ApiResult<ImportResult> {
    if req.content.len() > state.cfg.max_import_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the file is {} bytes; at most {} (REMORA_MAX_IMPORT_BYTES)",
                req.content.len(),
                state.cfg.max_import_bytes
            ),
        )
        .with_field("content"));
    }
    let (format, parsed) = parse_format(req.format.trim(), &req.content)?;
    let existing = state.store.list_servers().await?;
    let mut res = ImportResult {
        format: format.to_string(),
        dry_run: req.dry_run,
        applied: false,
        created: 0,
        updated: 0,
        unchanged: 0,
        skipped: 0,
        rows: vec![],
        errors: parsed.errors.clone(),
        warnings: parsed.warnings.clone(),
    };
    let max_hosts = state.cfg.max_batch_hosts;
    let n = parsed.hosts.len().max(parsed.known_hosts.len());
    if n > max_hosts {
        res.errors.push(LineError {
            line: 0,
            message: format!(
                "the file has {n} entries; at most {max_hosts} (REMORA_MAX_BATCH_HOSTS)"
            ),
        });
        return Ok(res);
    }
    let ops = if format == "known_hosts" {
        plan_known_hosts(&parsed, &existing, &mut res)
    } else {
        plan_hosts(&state, &req, parsed.hosts, &existing, &mut res).await?
    };
    for r in &res.rows {
        match r.action.as_str() {
            "create" => res.created += 1,
            "update" => res.updated += 1,
            "unchanged" => res.unchanged += 1,
            _ => res.skipped += 1,
        }
    }
    res.errors.sort_by_key(|e| e.line);
    if !res.errors.is_empty() || req.dry_run || ops.is_empty() {
        return Ok(res);
    }
    state.store.apply_import(&ops).await.map_err(|e| match e {
        remora_store::StoreError::Conflict { .. } => ApiError::conflict(
            "content",
            "a server named like one of the file's was created meanwhile; nothing was applied, import again",
        ),
        e => e.into(),
    })?;
    res.applied = true;
    let detail = format!(
        "{format}: {} created, {} updated, {} unchanged, {} skipped",
        res.created, res.updated, res.unchanged, res.skipped
    );
    tracing::info!(%detail, "inventory imported");
    crate::audit(
        &state,
        &caller,
        "server.import",
        "server",
        None,
        Some(&detail),
    )
    .await;
    for r in res
        .rows
        .iter()
        .filter(|r| r.action != "unchanged" && r.action != "skip")
    {
        let action = if format == "known_hosts" {
            "server.host_key.import"
        } else if r.action == "create" {
            "server.create"
        } else {
            "server.update"
        };
        let detail = format!("import: {}", r.reasons.join("; "));
        crate::audit(
            &state,
            &caller,
            action,
            "server",
            r.server_id.as_deref(),
            Some(&detail),
        )
        .await;
    }
    Ok(res)
}

/// What a validation error of a row says, for the row's line.
fn api_message(e: &ApiError) -> String {
    e.to_string()
}

/// The fields of one host, resolved against the defaults and validated as `POST /servers` does.
struct Planned {
    row: HostRow,
    id: String,
    existing: Option<Server>,
    server: NewServer,
    jump: Option<String>,
}

async fn plan_hosts(
    state: &AppState,
    req: &ImportRequest,
    rows: Vec<HostRow>,
    existing: &[Server],
    res: &mut ImportResult,
) -> ApiResult<Vec<ImportOp>> {
    let empty = CreateServer::default();
    let d = req.defaults.as_ref().unwrap_or(&empty);
    if d.name.is_some() || d.hostname.is_some() || d.jump_server_id.is_some() {
        return Err(ApiError::invalid(
            "defaults",
            "defaults cannot set name, hostname or jump_server_id (the file does)",
        ));
    }
    let by_name: BTreeMap<&str, &Server> = existing.iter().map(|s| (s.name.as_str(), s)).collect();
    // The credentials of servers to create, validated once (and the key parsed once).
    let needs_auth = rows.iter().any(|r| !by_name.contains_key(r.name.as_str()));
    let auth: Option<NewServer> = if needs_auth {
        if let Some(p) = &d.pem_file_id {
            if state.store.get_pem(p).await?.is_none() {
                return Err(ApiError::not_found("pem file", p).with_field("defaults.pem_file_id"));
            }
        }
        let probe = CreateServer {
            name: Some("import".into()),
            hostname: Some("localhost".into()),
            user: Some("import".into()),
            auth_type: d.auth_type.clone(),
            password: d.password.clone(),
            private_key: d.private_key.clone(),
            passphrase: d.passphrase.clone(),
            pem_file_id: d.pem_file_id.clone(),
            sudo_password: d.sudo_password.clone(),
            credential_id: d.credential_id.clone(),
            ..Default::default()
        };
        let cred = match d.credential_id.as_deref() {
            Some(c) => Some(
                crate::credentials::resolve(state, c)
                    .await
                    .map_err(|e| e.with_field("defaults.credential_id"))?,
            ),
            None => None,
        };
        let checked = match crate::servers::check_key(state, &probe).await {
            Ok(()) => crate::servers::validate_with(state, probe, cred.as_ref()).map(|mut a| {
                a.credential_id = cred.as_ref().map(|c| c.id.clone());
                a
            }),
            Err(e) => Err(e),
        };
        match checked {
            Ok(a) => Some(a),
            Err(e) => {
                res.errors.push(LineError {
                    line: 0,
                    message: format!(
                        "servers to create need credentials in `defaults`: {}",
                        api_message(&e)
                    ),
                });
                None
            }
        }
    } else {
        None
    };
    let mut names = BTreeMap::new();
    let mut planned: Vec<Planned> = vec![];
    for row in rows {
        if let Some(first) = names.insert(row.name.clone(), row.line) {
            res.errors.push(LineError {
                line: row.line,
                message: format!("`{}` is also defined on line {first}", row.name),
            });
            continue;
        }
        let cur = by_name.get(row.name.as_str()).copied();
        let mut tags: BTreeSet<String> = d.tags.clone().unwrap_or_default().into_iter().collect();
        tags.extend(row.tags.iter().cloned());
        if let Some(c) = cur {
            tags.extend(c.tags.iter().cloned());
        }
        let input = CreateServer {
            name: Some(row.name.clone()),
            hostname: Some(
                row.hostname
                    .clone()
                    .or_else(|| cur.map(|c| c.hostname.clone()))
                    .unwrap_or_else(|| row.name.clone()),
            ),
            port: row.port.or(cur.map(|c| c.port)).or(d.port),
            user: row
                .user
                .clone()
                .or_else(|| cur.map(|c| c.user.clone()))
                .or_else(|| d.user.clone()),
            tags: Some(tags.into_iter().collect()),
            max_concurrency: row
                .max_concurrency
                .or(cur.map(|c| c.max_concurrency))
                .or(d.max_concurrency),
            is_active: row.is_active.or(cur.map(|c| c.is_active)).or(d.is_active),
            // Checked once above; a placeholder lets validate_new check the rest.
            password: Some("(import)".into()),
            ..Default::default()
        };
        let v = match validate_new(state, input) {
            Ok(v) => v,
            Err(e) => {
                let msg = match &e {
                    ApiError::Invalid { field: Some(f), .. } if f == "user" => format!(
                        "{}: no user for `{}` (set one in the file or `defaults.user`)",
                        api_message(&e),
                        row.name
                    ),
                    _ => format!("`{}`: {}", row.name, api_message(&e)),
                };
                res.errors.push(LineError {
                    line: row.line,
                    message: msg,
                });
                continue;
            }
        };
        let server = match &auth {
            Some(a) if cur.is_none() => NewServer {
                name: v.name,
                hostname: v.hostname,
                port: v.port,
                user: v.user,
                tags: v.tags,
                max_concurrency: v.max_concurrency,
                is_active: v.is_active,
                ..a.clone()
            },
            _ => NewServer {
                password_enc: None,
                auth_type: None,
                ..v
            },
        };
        planned.push(Planned {
            id: cur
                .map(|c| c.id.clone())
                .unwrap_or_else(remora_domain::new_id),
            existing: cur.cloned(),
            server,
            jump: None,
            row,
        });
    }
    resolve_jumps(state, &mut planned, existing, res);
    let mut ops = vec![];
    for p in planned {
        let mut reasons = vec![];
        for f in &p.row.identity_files {
            reasons.push(format!(
                "identity_file {f}: the server cannot read your files; attach a credential (defaults carry the auth)"
            ));
        }
        for f in &p.row.certificate_files {
            reasons.push(format!(
                "certificate_file {f}: the server cannot read your files; attach it to the credential"
            ));
        }
        if !p.row.aliases.is_empty() {
            reasons.push(format!("also known as {}", p.row.aliases.join(", ")));
        }
        let s = &p.server;
        let action = match &p.existing {
            None => {
                reasons.insert(
                    0,
                    format!("new server {}@{}:{}", s.user, s.hostname, s.port),
                );
                ops.push(ImportOp::Create {
                    id: p.id.clone(),
                    server: p.server.clone(),
                    jump_server_id: p.jump.clone(),
                    host_key: None,
                });
                "create"
            }
            Some(c) => {
                let mut changes = vec![];
                if c.hostname != s.hostname {
                    changes.push(format!("hostname {} → {}", c.hostname, s.hostname));
                }
                if c.port != s.port {
                    changes.push(format!("port {} → {}", c.port, s.port));
                }
                if c.user != s.user {
                    changes.push(format!("user {} → {}", c.user, s.user));
                }
                let added: Vec<&String> = s.tags.iter().filter(|t| !c.tags.contains(t)).collect();
                if !added.is_empty() {
                    changes.push(format!(
                        "tags + {}",
                        added
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                if c.max_concurrency != s.max_concurrency {
                    changes.push(format!(
                        "max_concurrency {} → {}",
                        c.max_concurrency, s.max_concurrency
                    ));
                }
                if c.is_active != s.is_active {
                    changes.push(format!("is_active {} → {}", c.is_active, s.is_active));
                }
                // A file that names no jump host leaves the server's as it is.
                let jump = if p.row.jump.is_some() {
                    p.jump.clone()
                } else {
                    c.jump_server_id.clone()
                };
                if jump != c.jump_server_id {
                    changes.push(format!(
                        "jump host {} → {}",
                        c.jump_server_id.as_deref().unwrap_or("(none)"),
                        jump.as_deref().unwrap_or("(none)")
                    ));
                }
                if changes.is_empty() {
                    reasons.insert(0, "already as in the file".into());
                    "unchanged"
                } else {
                    reasons.splice(0..0, changes);
                    ops.push(ImportOp::Update {
                        id: p.id.clone(),
                        hostname: s.hostname.clone(),
                        port: s.port,
                        user: s.user.clone(),
                        tags: s.tags.clone(),
                        max_concurrency: s.max_concurrency,
                        is_active: s.is_active,
                        jump_server_id: jump,
                    });
                    "update"
                }
            }
        };
        res.rows.push(ImportRow {
            line: p.row.line,
            name: p.row.name.clone(),
            action: action.into(),
            server_id: Some(p.id),
            reasons,
        });
    }
    Ok(ops)
}

/// `ProxyJump` → `jump_server_id`: each hop is a server of this import or an existing one, by
/// name (or alias) or by hostname (and port). `a,b` (first hop first) makes `b` this host's jump
/// host and `a` `b`'s when `b` is imported without one. Then no chain may loop or be longer than
/// `REMORA_MAX_JUMP_DEPTH`.
fn resolve_jumps(
    state: &AppState,
    planned: &mut [Planned],
    existing: &[Server],
    res: &mut ImportResult,
) {
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    let mut by_host: BTreeMap<(String, Option<i64>), String> = BTreeMap::new();
    for s in existing {
        by_name.insert(s.name.clone(), s.id.clone());
        by_host.insert((s.hostname.clone(), Some(s.port)), s.id.clone());
        by_host
            .entry((s.hostname.clone(), None))
            .or_insert(s.id.clone());
    }
    for p in planned.iter() {
        by_name.insert(p.row.name.clone(), p.id.clone());
        for a in &p.row.aliases {
            by_name.entry(a.clone()).or_insert(p.id.clone());
        }
        by_host.insert(
            (p.server.hostname.clone(), Some(p.server.port)),
            p.id.clone(),
        );
        by_host.insert((p.server.hostname.clone(), None), p.id.clone());
    }
    let find = |hop: &str| -> Option<String> {
        let hop = hop.trim();
        if let Some(id) = by_name.get(hop) {
            return Some(id.clone());
        }
        let host = hop.rsplit_once('@').map(|(_, h)| h).unwrap_or(hop);
        if let Some(id) = by_name.get(host) {
            return Some(id.clone());
        }
        let (h, port) = match host.strip_prefix('[').and_then(|r| r.split_once("]:")) {
            Some((h, p)) => (h, p.parse().ok()),
            None => match host.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, p.parse().ok()),
                _ => (host, None),
            },
        };
        by_host.get(&(h.to_string(), port)).cloned()
    };
    let index: BTreeMap<String, usize> = planned
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.clone(), i))
        .collect();
    let mut set_later: Vec<(usize, String)> = vec![];
    for (i, p) in planned.iter_mut().enumerate() {
        let Some(spec) = p.row.jump.clone() else {
            continue;
        };
        let hops: Vec<&str> = spec.split(',').filter(|h| !h.trim().is_empty()).collect();
        let mut ids = vec![];
        for h in &hops {
            match find(h) {
                Some(id) => ids.push(id),
                None => {
                    res.errors.push(LineError {
                        line: p.row.line,
                        message: format!(
                            "ProxyJump `{}` of `{}`: no server of that name or host in this import or already present",
                            h.trim(),
                            p.row.name
                        ),
                    });
                }
            }
        }
        if ids.len() != hops.len() {
            continue;
        }
        p.jump = ids.last().cloned();
        for w in ids.windows(2) {
            if let Some(&j) = index.get(&w[1]) {
                set_later.push((j, w[0].clone()));
            }
        }
        let _ = i;
    }
    for (j, via) in set_later {
        if planned[j].jump.is_none() && planned[j].row.jump.is_none() {
            planned[j].jump = Some(via);
        }
    }
    // The chains as they will be: existing jump hosts, replaced by the import's.
    let mut next: BTreeMap<String, Option<String>> = existing
        .iter()
        .map(|s| (s.id.clone(), s.jump_server_id.clone()))
        .collect();
    for p in planned.iter() {
        let j = if p.row.jump.is_some() || p.existing.is_none() {
            p.jump.clone()
        } else {
            p.existing.as_ref().and_then(|e| e.jump_server_id.clone())
        };
        next.insert(p.id.clone(), j);
    }
    let max = state.cfg.max_jump_depth;
    for p in planned.iter() {
        let mut seen = vec![p.id.clone()];
        let mut cur = next.get(&p.id).cloned().flatten();
        while let Some(c) = cur {
            if seen.contains(&c) {
                res.errors.push(LineError {
                    line: p.row.line,
                    message: format!("the jump hosts of `{}` make a loop", p.row.name),
                });
                break;
            }
            seen.push(c.clone());
            if seen.len() - 1 > max {
                res.errors.push(LineError {
                    line: p.row.line,
                    message: format!(
                        "`{}` is more than {max} jump hosts away (REMORA_MAX_JUMP_DEPTH)",
                        p.row.name
                    ),
                });
                break;
            }
            cur = next.get(&c).cloned().flatten();
        }
    }
}

/// `known_hosts`: pin each existing server's key (the type the client prefers when several
/// match); a server pinned to another key is left for review, not overwritten.
fn plan_known_hosts(parsed: &Parsed, existing: &[Server], res: &mut ImportResult) -> Vec<ImportOp> {
    let mut ops = vec![];
    let mut used = BTreeSet::new();
    for s in existing {
        let mut matching: Vec<&parse::KnownHost> = parsed
            .known_hosts
            .iter()
            .filter(|k| k.hosts.matches(&s.hostname, s.port))
            .collect();
        if matching.is_empty() {
            continue;
        }
        matching.sort_by_key(|k| (parse::key_preference(&k.key_type), k.line));
        for k in &matching {
            used.insert(k.line);
        }
        let k = matching[0];
        let mut reasons = vec![];
        if matching.len() > 1 {
            reasons.push(format!(
                "{} keys for {}: the {} key is the one the server will present",
                matching.len(),
                parse::known_hosts_name(&s.hostname, s.port),
                k.key_type
            ));
        }
        let action = match &s.host_key_fingerprint {
            Some(fp) if *fp == k.fingerprint => {
                reasons.insert(0, format!("already pinned to {fp}"));
                "unchanged"
            }
            Some(fp) => {
                reasons.insert(
                    0,
                    format!(
                        "pinned to {fp}, the file has {}: kept; review it under host-key trust",
                        k.fingerprint
                    ),
                );
                "skip"
            }
            None => {
                reasons.insert(0, format!("pin {} ({})", k.fingerprint, k.key_type));
                ops.push(ImportOp::PinHostKey {
                    id: s.id.clone(),
                    fingerprint: k.fingerprint.clone(),
                });
                "update"
            }
        };
        res.rows.push(ImportRow {
            line: k.line,
            name: s.name.clone(),
            action: action.into(),
            server_id: Some(s.id.clone()),
            reasons,
        });
    }
    for k in &parsed.known_hosts {
        if !used.contains(&k.line) {
            res.warnings.push(LineError {
                line: k.line,
                message: "no server has this host and port".into(),
            });
        }
    }
    res.rows.sort_by_key(|r| r.line);
    res.warnings.sort_by_key(|w| w.line);
    ops
}
