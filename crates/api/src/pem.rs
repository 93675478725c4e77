//! `/pem-files`: private-key uploads. The file must parse as a private key;
//! it is stored encrypted and referenced by id. The uploaded file name is
//! never used (nothing reaches the filesystem).

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use remora_store::PemFile;
use russh::keys::HashAlg;
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new().route("/pem-files", get(list).post(upload)).route("/pem-files/{id}", delete(remove).get(get_one))
}

async fn upload(State(state): State<AppState>, Extension(caller): Extension<Caller>, mut mp: Multipart) -> ApiResult<(StatusCode, Json<Value>)> {
    let max = state.cfg.pem_max_bytes;
    let mut content: Option<Vec<u8>> = None;
    let mut passphrase: Option<String> = None;
    while let Some(mut field) = mp.next_field().await.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_multipart", e.body_text()))? {
        match field.name() {
            Some("file") => {
                let mut buf = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_multipart", e.body_text()))? {
                    if buf.len() + chunk.len() > max {
                        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("the key file is larger than {max} bytes")).with_field("file"));
                    }
                    buf.extend_from_slice(&chunk);
                }
                content = Some(buf);
            }
            Some("passphrase") => {
                passphrase = Some(field.text().await.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_multipart", e.body_text()))?).filter(|p| !p.is_empty());
            }
            _ => {}
        }
    }
    let content = content.ok_or_else(|| ApiError::missing("file"))?;
    if content.is_empty() {
        return Err(ApiError::invalid("file", "the key file is empty"));
    }
    let text = String::from_utf8(content).map_err(|_| ApiError::invalid("file", "the key file is not text (PEM or OpenSSH format expected)"))?;
    let key = remora_ssh::parse_private_key(&text, passphrase.as_deref()).map_err(|e| ApiError::invalid("file", format!("not a usable private key: {e}")))?;
    let key_type = key.algorithm().to_string();
    let fingerprint = key.public_key().fingerprint(HashAlg::Sha256).to_string();
    let pem = state
        .store
        .insert_pem(&key_type, &fingerprint, &state.vault.seal(text.as_bytes()), passphrase.map(|p| state.vault.seal(p.as_bytes())), text.len() as i64)
        .await?;
    crate::audit(&state, &caller, "pem.upload", "pem_file", Some(&pem.id), Some(&fingerprint)).await;
    Ok((StatusCode::CREATED, Json(json!(pem))))
}

async fn list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let pems = state.store.list_pems().await?;
    Ok(Json(json!({ "pem_files": pems })))
}

async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<PemFile>> {
    state.store.get_pem(&id).await?.map(Json).ok_or_else(|| ApiError::not_found("pem file", &id))
}

async fn remove(State(state): State<AppState>, Extension(caller): Extension<Caller>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    if state.store.get_pem(&id).await?.is_none() {
        return Err(ApiError::not_found("pem file", &id));
    }
    let users = state.store.pem_users(&id).await?;
    if !users.is_empty() {
        return Err(ApiError::new(StatusCode::CONFLICT, "in_use", format!("the key is used by server(s) {}; change them first", users.join(", "))));
    }
    state.store.delete_pem(&id).await?;
    crate::audit(&state, &caller, "pem.delete", "pem_file", Some(&id), None).await;
    Ok(StatusCode::NO_CONTENT)
}
