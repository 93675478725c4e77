//! `/pem-files`: private-key uploads. The file must parse as a private key;
//! it is stored encrypted and referenced by id. The uploaded file name is
//! never used (nothing reaches the filesystem).

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::openapi::PemList;
use crate::AppState;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use remora_store::PemFile;
use russh::keys::HashAlg;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, upload))
        .routes(routes!(get_one, remove))
}

/// The multipart form of an upload.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct PemUpload {
    /// The private key (PEM or OpenSSH text).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Its passphrase, if it is encrypted.
    passphrase: Option<String>,
}

/// Upload a private key (multipart field `file`, at most 64 KiB by default). It must parse as a
/// private key; it is stored encrypted and referenced by id.
#[utoipa::path(post, path = "/pem-files", tag = "keys", request_body(content = PemUpload, content_type = "multipart/form-data"), responses((status = 201, body = PemFile), (status = 400, body = crate::openapi::ErrorBody), (status = 413, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn upload(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    mut mp: Multipart,
) -> ApiResult<(StatusCode, Json<PemFile>)> {
    let max = state.cfg.pem_max_bytes;
    let mut content: Option<Vec<u8>> = None;
    let mut passphrase: Option<String> = None;
    while let Some(mut field) = mp
        .next_field()
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_multipart", e.body_text()))?
    {
        match field.name() {
            Some("file") => {
                let mut buf = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| {
                    ApiError::new(StatusCode::BAD_REQUEST, "bad_multipart", e.body_text())
                })? {
                    if buf.len() + chunk.len() > max {
                        return Err(ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "payload_too_large",
                            format!("the key file is larger than {max} bytes"),
                        )
                        .with_field("file"));
                    }
                    buf.extend_from_slice(&chunk);
                }
                content = Some(buf);
            }
            Some("passphrase") => {
                passphrase = Some(field.text().await.map_err(|e| {
                    ApiError::new(StatusCode::BAD_REQUEST, "bad_multipart", e.body_text())
                })?)
                .filter(|p| !p.is_empty());
            }
            _ => {}
        }
    }
    let content = content.ok_or_else(|| ApiError::missing("file"))?;
    if content.is_empty() {
        return Err(ApiError::invalid("file", "the key file is empty"));
    }
    let text = String::from_utf8(content).map_err(|_| {
        ApiError::invalid(
            "file",
            "the key file is not text (PEM or OpenSSH format expected)",
        )
    })?;
    let key =
        remora_ssh::parse_private_key_async(&text, passphrase.as_deref(), state.cfg.key_limits)
            .await
            .map_err(|e| ApiError::invalid("file", format!("not a usable private key: {e}")))?;
    let key_type = key.algorithm().to_string();
    let fingerprint = key.public_key().fingerprint(HashAlg::Sha256).to_string();
    let pem = state
        .store
        .insert_pem(
            &key_type,
            &fingerprint,
            &state.vault.seal(text.as_bytes()),
            passphrase.map(|p| state.vault.seal(p.as_bytes())),
            text.len() as i64,
        )
        .await?;
    crate::audit(
        &state,
        &caller,
        "pem.upload",
        "pem_file",
        Some(&pem.id),
        Some(&fingerprint),
    )
    .await;
    Ok((StatusCode::CREATED, Json(pem)))
}

/// Uploaded keys (type and fingerprint, never the key).
#[utoipa::path(get, operation_id = "list_pem_files", path = "/pem-files", tag = "keys", responses((status = 200, body = PemList), (status = 401, body = crate::openapi::ErrorBody)))]
async fn list(State(state): State<AppState>) -> ApiResult<Json<PemList>> {
    Ok(Json(PemList {
        pem_files: state.store.list_pems().await?,
    }))
}

/// One uploaded key.
#[utoipa::path(get, operation_id = "get_pem_file", path = "/pem-files/{id}", tag = "keys", params(("id" = String, Path)), responses((status = 200, body = PemFile), (status = 404, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<PemFile>> {
    state
        .store
        .get_pem(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("pem file", &id))
}

/// Delete an uploaded key that no server uses.
#[utoipa::path(delete, path = "/pem-files/{id}", tag = "keys", params(("id" = String, Path)), responses((status = 204, description = "Deleted"), (status = 404, body = crate::openapi::ErrorBody), (status = 409, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody)))]
async fn remove(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if state.store.get_pem(&id).await?.is_none() {
        return Err(ApiError::not_found("pem file", &id));
    }
    let users = state.store.pem_users(&id).await?;
    if !users.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "in_use",
            format!(
                "the key is used by server(s) {}; change them first",
                users.join(", ")
            ),
        ));
    }
    state.store.delete_pem(&id).await?;
    crate::audit(&state, &caller, "pem.delete", "pem_file", Some(&id), None).await;
    Ok(StatusCode::NO_CONTENT)
}
