//! HTTP client for the REST API: resolves URL and token (flag, environment,
//! saved profile, or the local data dir's admin token), and turns failed
//! requests into errors that carry the API's code and message plus a hint.

use anyhow::{anyhow, Context, Result};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Profiles {
    pub current: Option<String>,
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub url: String,
    pub token: String,
}

pub fn profiles_path() -> PathBuf {
    if let Ok(p) = std::env::var("REMORA_CONFIG") {
        return PathBuf::from(p);
    }
    dirs::config_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("remora")
        .join("profiles.json")
}

pub fn load_profiles() -> Profiles {
    std::fs::read_to_string(profiles_path())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

pub fn save_profiles(p: &Profiles) -> Result<PathBuf> {
    let path = profiles_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    remora_store::vault::write_private_file(&path, serde_json::to_string_pretty(p)?.as_bytes())?;
    Ok(path)
}

/// A reply of the API: `raw` as it came (what `-o json` prints), `body` typed.
#[derive(Debug)]
pub struct Reply<T> {
    pub raw: Value,
    pub body: T,
}

/// An error from the API (or from reaching it), printed as-is by `main`.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: Option<StatusCode>,
    pub code: String,
    pub message: String,
    pub hint: Option<String>,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "{} ({}, HTTP {})", self.message, self.code, s.as_u16())?,
            None => write!(f, "{}", self.message)?,
        }
        if let Some(h) = &self.hint {
            write!(f, "\nhint: {h}")?;
        }
        Ok(())
    }
}
impl std::error::Error for ApiFailure {}

#[derive(Clone)]
pub struct Api {
    pub url: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    pub fn new(url: Option<String>, token: Option<String>, profile: Option<&str>) -> Api {
        let profiles = load_profiles();
        let prof = profile
            .map(str::to_string)
            .or(profiles.current.clone())
            .and_then(|n| profiles.profiles.get(&n).cloned());
        let url = url
            .or_else(|| prof.as_ref().map(|p| p.url.clone()))
            .unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let token = token
            .or_else(|| prof.as_ref().map(|p| p.token.clone()))
            .or_else(|| {
                // `remora up` on this machine: the generated admin token.
                let dir = std::env::var("REMORA_DATA_DIR").unwrap_or_else(|_| "./data".into());
                std::fs::read_to_string(PathBuf::from(dir).join("admin.token"))
                    .ok()
                    .map(|t| t.trim().to_string())
            })
            .filter(|t| !t.is_empty());
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("building the HTTP client");
        Api {
            url: url.trim_end_matches('/').to_string(),
            token,
            http,
        }
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self.http.request(method, format!("{}{}", self.url, path));
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        rb
    }

    pub fn unreachable(&self, e: &reqwest::Error) -> anyhow::Error {
        anyhow!(ApiFailure {
            status: None,
            code: "unreachable".into(),
            message: format!("cannot reach the Remora API at {}: {}", self.url, root_cause(e)),
            hint: Some("is the server running (`make up` / `remora up`)? Set the address with --url or REMORA_API_URL".into()),
        })
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let resp = rb.send().await.map_err(|e| self.unreachable(&e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let code = body["error"]["code"]
            .as_str()
            .unwrap_or("http_error")
            .to_string();
        let mut message = body["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("the API answered {status}"));
        if let Some(f) = body["error"]["field"].as_str() {
            message = format!("{message} [field: {f}]");
        }
        let hint = match status {
            StatusCode::UNAUTHORIZED if self.token.is_none() => {
                Some("no token: pass --token, set REMORA_TOKEN, or run `remora login`".to_string())
            }
            StatusCode::UNAUTHORIZED => Some(
                "the token was rejected: check REMORA_TOKEN / --token, or run `remora login` again"
                    .to_string(),
            ),
            _ => None,
        };
        Err(anyhow!(ApiFailure {
            status: Some(status),
            code,
            message,
            hint
        }))
    }

    /// Send `rb` and read the reply both as sent (for `-o json`) and as `T`.
    pub async fn send_as<T: DeserializeOwned>(
        &self,
        rb: reqwest::RequestBuilder,
    ) -> Result<Reply<T>> {
        let raw: Value = self.send(rb).await?.json().await?;
        let body = T::deserialize(&raw).with_context(|| {
            format!(
                "the API's reply has an unexpected shape (is the CLI older than the API at {}?)",
                self.url
            )
        })?;
        Ok(Reply { raw, body })
    }
    pub async fn get_as<T: DeserializeOwned>(&self, path: &str) -> Result<Reply<T>> {
        self.send_as(self.request(Method::GET, path)).await
    }
    pub async fn post_as<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<Reply<T>> {
        self.send_as(self.request(Method::POST, path).json(body))
            .await
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        Ok(self
            .send(self.request(Method::GET, path))
            .await?
            .json()
            .await?)
    }
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        Ok(self
            .send(self.request(Method::POST, path).json(body))
            .await?
            .json()
            .await?)
    }
    pub async fn delete(&self, path: &str) -> Result<()> {
        self.send(self.request(Method::DELETE, path)).await?;
        Ok(())
    }
}

fn root_cause(e: &reqwest::Error) -> String {
    let mut s: &dyn std::error::Error = e;
    while let Some(src) = s.source() {
        s = src;
    }
    s.to_string()
}

/// URL-encode a path or query component.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
