//! `/credentials`: keys and passwords many servers share; secrets sealed on the way in, never returned.
//!
//! A credential is `kind` `key` (a private key, an optional passphrase and an optional OpenSSH
//! user certificate for that key) or `password`, plus an optional `sudo_password`. Servers
//! reference one by `credential_id`. Rotating one (PUT) applies to every server using it at its
//! next connection: the SSH pool keys connections by the secrets they authenticated with, so a
//! connection made with the old secret is never leased again. Responses carry fingerprints,
//! `has_*` flags and the certificate's principals and validity, never a secret.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use remora_store::{Credential, NewCredential};
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::HashAlg;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, rotate, remove))
}

/// Create (name, kind and its secret required) or rotate (every field optional: absent keeps,
/// `""` removes the passphrase, certificate or sudo password) a credential.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialBody {
    /// Unique; 1–64 letters, digits, `-`, `_`, `.`.
    pub name: Option<String>,
    /// `key` or `password` (inferred from the secret given when absent).
    pub kind: Option<String>,
    /// The private key (OpenSSH or PEM text), for `key`.
    pub private_key: Option<String>,
    pub passphrase: Option<String>,
    /// An OpenSSH user certificate for the private key (`ssh-ed25519-cert-v01@openssh.com AAAA…`).
    pub certificate: Option<String>,
    /// The login password, for `password`.
    pub password: Option<String>,
    /// The password sudo asks for when a job runs with `become`.
    pub sudo_password: Option<String>,
}

/// A user certificate's identity and validity.
#[derive(Serialize, ToSchema, Debug, Clone)]
pub struct CertificateInfo {
    pub key_id: String,
    pub principals: Vec<String>,
    /// RFC 3339.
    pub valid_after: String,
    /// RFC 3339, or `forever`.
    pub valid_before: String,
    /// `valid`, `expired` or `not_yet_valid` (now).
    pub status: String,
    /// The CA that signed it (`SHA256:…`).
    pub signed_by: String,
}

/// A credential without its secrets.
#[derive(Serialize, ToSchema, Debug, Clone)]
pub struct CredentialView {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// The key's algorithm (`ssh-ed25519`), for `key`.
    pub key_type: Option<String>,
    /// The key's public fingerprint (`SHA256:…`), for `key`.
    pub fingerprint: Option<String>,
    pub has_password: bool,
    pub has_private_key: bool,
    pub has_passphrase: bool,
    pub has_sudo_password: bool,
    pub certificate: Option<CertificateInfo>,
    /// Set when this is a server's private credential (made from the inline secrets of
    /// `POST/PUT /servers`); it is deleted with its server.
    pub owner_server_id: Option<String>,
    /// Grows by one at every rotation.
    pub version: i64,
    /// How many servers use it.
    pub servers: usize,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CredentialList {
    pub credentials: Vec<CredentialView>,
    pub total: usize,
}

/// Servers using a credential (`GET /credentials/{id}` adds them).
#[derive(Serialize, ToSchema)]
pub struct CredentialDetail {
    #[serde(flatten)]
    pub credential: CredentialView,
    /// Names of the servers that use it.
    pub server_names: Vec<String>,
}

pub fn certificate_info(text: &str) -> Option<CertificateInfo> {
    let cert = remora_ssh::trust::parse_certificate(text).ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let status = if now < cert.valid_after() {
        "not_yet_valid"
    } else if now >= cert.valid_before() {
        "expired"
    } else {
        "valid"
    };
    Some(CertificateInfo {
        key_id: cert.key_id().to_string(),
        principals: cert.valid_principals().to_vec(),
        valid_after: remora_ssh::trust::unix_to_rfc3339(cert.valid_after()),
        valid_before: remora_ssh::trust::unix_to_rfc3339(cert.valid_before()),
        status: status.into(),
        signed_by: cert
            .signature_key()
            .fingerprint(HashAlg::Sha256)
            .to_string(),
    })
}

async fn view(state: &AppState, c: Credential) -> ApiResult<CredentialView> {
    let servers = state.store.credential_users(&c.id).await?.len();
    let (mut key_type, mut fingerprint) = (c.key_type.clone(), c.fingerprint.clone());
    if fingerprint.is_none() && c.has_private_key {
        // Migrated and inline keys carry no metadata yet: read it from the key (in memory only).
        if let Some(sealed) = state.store.credential_sealed(&c.id).await? {
            let open =
                |v: &Option<Vec<u8>>| v.as_ref().and_then(|b| state.vault.open_string(b).ok());
            if let Some(k) = open(&sealed.private_key_enc) {
                if let Ok(k) = remora_ssh::parse_private_key_async(
                    &k,
                    open(&sealed.passphrase_enc).as_deref(),
                    state.cfg.key_limits,
                )
                .await
                {
                    key_type = Some(k.algorithm().to_string());
                    fingerprint = Some(k.public_key().fingerprint(HashAlg::Sha256).to_string());
                }
            }
        }
    }
    Ok(CredentialView {
        certificate: c.certificate.as_deref().and_then(certificate_info),
        id: c.id,
        name: c.name,
        kind: c.kind,
        key_type,
        fingerprint,
        has_password: c.has_password,
        has_private_key: c.has_private_key,
        has_passphrase: c.has_passphrase,
        has_sudo_password: c.has_sudo_password,
        owner_server_id: c.owner_server_id,
        version: c.version,
        servers,
        created_at: c.created_at,
        updated_at: c.updated_at,
    })
}

/// The credential named by `id_or_name` (its id, or its name).
pub async fn resolve(state: &AppState, id_or_name: &str) -> ApiResult<Credential> {
    if let Some(c) = state.store.get_credential(id_or_name).await? {
        return Ok(c);
    }
    state
        .store
        .get_credential_by_name(id_or_name)
        .await?
        .ok_or_else(|| ApiError::not_found("credential", id_or_name))
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A sudo password goes to sudo's stdin as one line: a 422 for a newline, NUL or more than
/// 1024 bytes.
pub(crate) fn check_sudo_password(p: &str) -> ApiResult<()> {
    if p.len() > 1024 || p.contains(['\n', '\r', '\0']) {
        return Err(ApiError::invalid(
            "sudo_password",
            "sudo_password must be one line without NUL, at most 1024 bytes",
        ));
    }
    Ok(())
}

/// The key parsed off the runtime under `REMORA_MAX_KDF_ROUNDS` and its time limit; a 422
/// naming `private_key` otherwise.
async fn check_key(
    state: &AppState,
    key: &str,
    passphrase: Option<&str>,
) -> ApiResult<russh::keys::PrivateKey> {
    remora_ssh::parse_private_key_async(key, passphrase, state.cfg.key_limits)
        .await
        .map_err(|e| {
            ApiError::invalid(
                "private_key",
                format!("private_key is not a usable private key: {e}"),
            )
        })
}

/// The certificate must be an OpenSSH user certificate for exactly this key.
fn check_certificate(cert: &str, key: &russh::keys::PrivateKey) -> ApiResult<()> {
    let c = remora_ssh::trust::parse_certificate(cert)
        .map_err(|e| ApiError::invalid("certificate", e))?;
    if c.cert_type() != CertType::User {
        return Err(ApiError::invalid(
            "certificate",
            "certificate is a host certificate; a user certificate is needed to log in",
        ));
    }
    let want = key.public_key().fingerprint(HashAlg::Sha256);
    let got = russh::keys::PublicKey::from(c.public_key().clone()).fingerprint(HashAlg::Sha256);
    if want != got {
        return Err(ApiError::invalid(
            "certificate",
            format!("certificate is for key {got}, not for this credential's key {want}"),
        ));
    }
    Ok(())
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.trim().is_empty())
}

/// Build the credential to store from `b` over the current one (`cur`, for a rotation).
async fn merge(
    state: &AppState,
    b: &CredentialBody,
    cur: Option<(&Credential, remora_store::SealedCredential)>,
) -> ApiResult<NewCredential> {
    let open = |v: &Option<Vec<u8>>| -> ApiResult<Option<String>> {
        v.as_ref()
            .map(|x| state.vault.open_string(x))
            .transpose()
            .map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "secret_unreadable",
                    "the stored credential cannot be decrypted with the configured key",
                )
            })
    };
    let name = match (&b.name, cur.as_ref()) {
        (Some(n), _) => n.trim().to_string(),
        (None, Some((c, _))) => c.name.clone(),
        (None, None) => return Err(ApiError::missing("name")),
    };
    let own = cur.as_ref().and_then(|(c, _)| c.owner_server_id.clone());
    if own.is_none() && !valid_name(&name) {
        return Err(ApiError::invalid(
            "name",
            "name must be 1–64 characters of letters, digits, `-`, `_` or `.`",
        ));
    }
    let kind = match (&b.kind, cur.as_ref()) {
        (Some(k), _) => k.clone(),
        (None, Some((c, _))) if b.private_key.is_none() && b.password.is_none() => c.kind.clone(),
        _ if nonempty(&b.private_key).is_some() => "key".into(),
        _ if nonempty(&b.password).is_some() => "password".into(),
        (None, Some((c, _))) => c.kind.clone(),
        (None, None) => return Err(ApiError::missing("kind")),
    };
    let (cur_c, sealed) = match cur {
        Some((c, s)) => (Some(c), s),
        None => (None, Default::default()),
    };
    let same_kind = cur_c.map(|c| c.kind == kind).unwrap_or(false);
    let sudo = match &b.sudo_password {
        Some(s) if s.is_empty() => None,
        Some(s) => {
            check_sudo_password(s)?;
            Some(state.vault.seal(s.as_bytes()))
        }
        None => sealed.sudo_password_enc.clone(),
    };
    let mut out = NewCredential {
        name,
        kind: kind.clone(),
        sudo_password_enc: sudo,
        owner_server_id: own,
        ..Default::default()
    };
    match kind.as_str() {
        "key" => {
            if b.password.is_some() {
                return Err(ApiError::invalid(
                    "password",
                    "a `key` credential has no password (use kind `password`)",
                ));
            }
            let new_key = nonempty(&b.private_key);
            let (key_text, pass) = match &new_key {
                Some(k) => (k.clone(), nonempty(&b.passphrase)),
                None if same_kind => {
                    let k = open(&sealed.private_key_enc)?
                        .ok_or_else(|| ApiError::missing("private_key"))?;
                    let p = match &b.passphrase {
                        Some(p) if p.is_empty() => None,
                        Some(p) => Some(p.clone()),
                        None => open(&sealed.passphrase_enc)?,
                    };
                    (k, p)
                }
                None => return Err(ApiError::missing("private_key")),
            };
            let key = check_key(state, &key_text, pass.as_deref()).await?;
            // A new key drops the old certificate (it was for the old key).
            let cert = match &b.certificate {
                Some(c) if c.trim().is_empty() => None,
                Some(c) => Some(c.trim().to_string()),
                None if new_key.is_none() => sealed.certificate.clone(),
                None => None,
            };
            if let Some(c) = &cert {
                check_certificate(c, &key)?;
            }
            out.key_type = Some(key.algorithm().to_string());
            out.fingerprint = Some(key.public_key().fingerprint(HashAlg::Sha256).to_string());
            out.private_key_enc = Some(state.vault.seal(key_text.as_bytes()));
            out.passphrase_enc = pass.map(|p| state.vault.seal(p.as_bytes()));
            out.certificate = cert;
        }
        "password" => {
            for (f, v) in [
                ("private_key", &b.private_key),
                ("passphrase", &b.passphrase),
                ("certificate", &b.certificate),
            ] {
                if nonempty(v).is_some() {
                    return Err(ApiError::invalid(
                        f,
                        format!("a `password` credential has no {f} (use kind `key`)"),
                    ));
                }
            }
            out.password_enc = match (&b.password, same_kind) {
                (Some(p), _) if !p.is_empty() => Some(state.vault.seal(p.as_bytes())),
                (None, true) => sealed.password_enc.clone(),
                _ => return Err(ApiError::missing("password")),
            };
        }
        _ => {
            return Err(ApiError::invalid(
                "kind",
                "kind must be `key` or `password`",
            ))
        }
    }
    Ok(out)
}

fn name_taken(name: &str) -> ApiError {
    ApiError::conflict(
        "name",
        format!("a credential named `{name}` already exists"),
    )
}

fn map_conflict(e: remora_store::StoreError, name: &str) -> ApiError {
    match e {
        remora_store::StoreError::Conflict { .. } => name_taken(name),
        e => e.into(),
    }
}

/// Every credential, by name (no secrets).
#[utoipa::path(get, operation_id = "list_credentials", path = "/credentials", tag = "credentials", responses((status = 200, body = CredentialList), (status = 401, body = crate::openapi::ErrorBody)))]
async fn list(State(state): State<AppState>) -> ApiResult<Json<CredentialList>> {
    let mut out = Vec::new();
    for c in state.store.list_credentials().await? {
        out.push(view(&state, c).await?);
    }
    Ok(Json(CredentialList {
        total: out.len(),
        credentials: out,
    }))
}

/// Create a credential (operator; audited). The key must parse (with its passphrase) and a
/// certificate must be an OpenSSH user certificate for that key.
#[utoipa::path(post, operation_id = "create_credential", path = "/credentials", tag = "credentials", request_body = CredentialBody, responses((status = 201, body = CredentialView), (status = 409, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(b): JsonBody<CredentialBody>,
) -> ApiResult<(StatusCode, Json<CredentialView>)> {
    let new = merge(&state, &b, None).await?;
    let c = state
        .store
        .insert_credential(&new)
        .await
        .map_err(|e| map_conflict(e, &new.name))?;
    let detail = format!("{} {}", c.kind, c.fingerprint.as_deref().unwrap_or(""));
    tracing::info!(credential_id = %c.id, name = %c.name, "credential created");
    crate::audit(
        &state,
        &caller,
        "credential.create",
        "credential",
        Some(&c.id),
        Some(detail.trim()),
    )
    .await;
    Ok((StatusCode::CREATED, Json(view(&state, c).await?)))
}

/// One credential and the servers that use it.
#[utoipa::path(get, operation_id = "get_credential", path = "/credentials/{id}", tag = "credentials", params(("id" = String, Path, description = "Credential id or name")), responses((status = 200, body = CredentialDetail), (status = 404, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<CredentialDetail>> {
    let c = resolve(&state, &id).await?;
    let server_names = state
        .store
        .credential_users(&c.id)
        .await?
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    Ok(Json(CredentialDetail {
        credential: view(&state, c).await?,
        server_names,
    }))
}

/// Rotate (new key, password, passphrase, certificate or sudo password) or rename a credential
/// (operator; audited). Every server using it logs in with the new secret from its next
/// connection on; the old ciphertext is overwritten.
#[utoipa::path(put, operation_id = "update_credential", path = "/credentials/{id}", tag = "credentials", params(("id" = String, Path, description = "Credential id or name")), request_body = CredentialBody, responses((status = 200, body = CredentialView), (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn rotate(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<CredentialBody>,
) -> ApiResult<Json<CredentialView>> {
    let cur = resolve(&state, &id).await?;
    let sealed = state
        .store
        .credential_sealed(&cur.id)
        .await?
        .ok_or_else(|| ApiError::not_found("credential", &id))?;
    let new = merge(&state, &b, Some((&cur, sealed))).await?;
    state
        .store
        .update_credential(&cur.id, &new)
        .await
        .map_err(|e| map_conflict(e, &new.name))?;
    let mut changed: Vec<&str> = Vec::new();
    for (f, v) in [
        ("name", &b.name),
        ("kind", &b.kind),
        ("private_key", &b.private_key),
        ("passphrase", &b.passphrase),
        ("certificate", &b.certificate),
        ("password", &b.password),
        ("sudo_password", &b.sudo_password),
    ] {
        if v.is_some() {
            changed.push(f);
        }
    }
    let detail = format!("changed: {}", changed.join(", "));
    tracing::info!(credential_id = %cur.id, %detail, "credential rotated");
    crate::audit(
        &state,
        &caller,
        "credential.rotate",
        "credential",
        Some(&cur.id),
        Some(&detail),
    )
    .await;
    let c = state
        .store
        .get_credential(&cur.id)
        .await?
        .ok_or_else(|| ApiError::not_found("credential", &id))?;
    Ok(Json(view(&state, c).await?))
}

/// Delete a credential no server uses (operator; audited). In use: 409 `in_use` naming the
/// servers in the message and listing them (id, name) in `error.details.servers`.
#[utoipa::path(delete, operation_id = "delete_credential", path = "/credentials/{id}", tag = "credentials", params(("id" = String, Path, description = "Credential id or name")), responses((status = 204, description = "Deleted"), (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn remove(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let c = resolve(&state, &id).await?;
    let users = state.store.credential_users(&c.id).await?;
    if !users.is_empty() || !state.store.delete_credential(&c.id).await? {
        let names: Vec<&str> = users.iter().map(|(_, n)| n.as_str()).collect();
        return Err(ApiError::clash(
            "in_use",
            format!(
                "the credential is used by {} server(s): {}; point them at another credential first",
                names.len(),
                names.join(", ")
            ),
        )
        .with_servers(users));
    }
    crate::audit(
        &state,
        &caller,
        "credential.delete",
        "credential",
        Some(&c.id),
        Some(&c.name),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
