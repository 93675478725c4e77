//! `remora login`: check a URL and token against the API and save them as a profile.

use crate::client::{self, Api};
use anyhow::{Context, Result};

pub async fn run(
    api: &Api,
    url: Option<String>,
    token: Option<String>,
    name: String,
) -> Result<i32> {
    let url = url.unwrap_or_else(|| api.url.clone());
    let token = match token {
        Some(t) => t,
        None => rpassword::prompt_password("API token: ").context("reading the token")?,
    };
    let probe = Api::new(Some(url.clone()), Some(token.clone()), None);
    probe
        .get("/api/v1/servers")
        .await
        .context("checking the token against the API")?;
    let mut p = client::load_profiles();
    p.profiles
        .insert(name.clone(), client::Profile { url, token });
    p.current = Some(name.clone());
    let path = client::save_profiles(&p)?;
    eprintln!("saved profile `{name}` to {} (mode 0600)", path.display());
    Ok(0)
}
