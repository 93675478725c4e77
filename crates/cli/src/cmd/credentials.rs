//! `remora credentials …` and `remora trusted-cas …`: shared keys/passwords and trusted SSH CAs.
//!
//! Secrets come from files (`-` for stdin), never from argument values (they would land in
//! shell history and `ps`).

use crate::client::{enc, Api, Reply};
use crate::render::{emit, table, Human, Output};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum CredentialsCmd {
    /// List credentials (never their secrets).
    #[command(after_help = "Example:\n  remora credentials list")]
    List,
    /// Show one credential and the servers using it.
    #[command(after_help = "Example:\n  remora credentials show deploy")]
    Show { credential: String },
    /// Create a credential.
    #[command(
        after_help = "Examples:\n  remora credentials add deploy --key-file ~/.ssh/deploy --certificate-file ~/.ssh/deploy-cert.pub\n  echo \"$PW\" | remora credentials add ops --password-file -"
    )]
    Add {
        name: String,
        #[command(flatten)]
        secrets: Secrets,
    },
    /// Rotate a credential: every server using it logs in with the new secret from its next
    /// connection on.
    #[command(after_help = "Example:\n  remora credentials rotate deploy --key-file new_key")]
    Rotate {
        credential: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        secrets: Secrets,
    },
    /// Delete a credential no server uses.
    #[command(after_help = "Example:\n  remora credentials rm deploy")]
    Rm { credential: String },
}

#[derive(Args)]
pub struct Secrets {
    /// Private key file (OpenSSH or PEM; `-` reads stdin).
    #[arg(long, conflicts_with = "password_file")]
    key_file: Option<PathBuf>,
    /// File holding the key's passphrase (`-` reads stdin).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    /// OpenSSH user certificate file for the key.
    #[arg(long)]
    certificate_file: Option<PathBuf>,
    /// File holding the login password (`-` reads stdin).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// File holding the sudo password (`-` reads stdin).
    #[arg(long)]
    sudo_password_file: Option<PathBuf>,
}

fn read_secret(p: &PathBuf, trim: bool) -> Result<String> {
    let mut s = if p.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading stdin")?;
        s
    } else {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
    };
    if trim {
        s = s.trim_end_matches(['\r', '\n']).to_string();
    }
    Ok(s)
}

fn body_of(s: &Secrets) -> Result<Value> {
    let stdin_uses = [
        &s.key_file,
        &s.passphrase_file,
        &s.certificate_file,
        &s.password_file,
        &s.sudo_password_file,
    ]
    .iter()
    .filter(|f| f.as_ref().is_some_and(|p| p.as_os_str() == "-"))
    .count();
    if stdin_uses > 1 {
        bail!("only one secret can come from stdin (`-`)");
    }
    let mut b = json!({});
    if let Some(f) = &s.key_file {
        b["private_key"] = json!(read_secret(f, false)?);
        b["kind"] = json!("key");
    }
    if let Some(f) = &s.passphrase_file {
        b["passphrase"] = json!(read_secret(f, true)?);
    }
    if let Some(f) = &s.certificate_file {
        b["certificate"] = json!(read_secret(f, true)?);
    }
    if let Some(f) = &s.password_file {
        b["password"] = json!(read_secret(f, true)?);
        b["kind"] = json!("password");
    }
    if let Some(f) = &s.sudo_password_file {
        b["sudo_password"] = json!(read_secret(f, true)?);
    }
    Ok(b)
}

fn line_of(c: &Value) -> String {
    let cert = match c["certificate"].as_object() {
        Some(x) => format!(
            ", certificate {} until {}",
            x["status"].as_str().unwrap_or(""),
            x["valid_before"].as_str().unwrap_or("")
        ),
        None => String::new(),
    };
    format!(
        "credential {} ({} {}, version {}, {} server(s){cert})",
        c["name"].as_str().unwrap_or(""),
        c["kind"].as_str().unwrap_or(""),
        c["fingerprint"].as_str().unwrap_or(""),
        c["version"],
        c["servers"]
    )
}

pub async fn run(api: &Api, out: Output, c: CredentialsCmd) -> Result<i32> {
    match c {
        CredentialsCmd::List => {
            let v = api.get("/api/v1/credentials").await?;
            let mut t = table(&[
                "NAME",
                "KIND",
                "FINGERPRINT",
                "CERTIFICATE",
                "SUDO",
                "SERVERS",
                "VERSION",
            ]);
            for c in v["credentials"].as_array().into_iter().flatten() {
                t.add_row(vec![
                    c["name"].as_str().unwrap_or("").to_string(),
                    c["kind"].as_str().unwrap_or("").to_string(),
                    c["fingerprint"].as_str().unwrap_or("-").to_string(),
                    c["certificate"]["valid_before"]
                        .as_str()
                        .map(|b| {
                            format!(
                                "{} until {b}",
                                c["certificate"]["status"].as_str().unwrap_or("")
                            )
                        })
                        .unwrap_or_else(|| "-".into()),
                    if c["has_sudo_password"] == true {
                        "yes"
                    } else {
                        "no"
                    }
                    .into(),
                    c["servers"].to_string(),
                    c["version"].to_string(),
                ]);
            }
            emit(out, &v, &Human::table(t));
        }
        CredentialsCmd::Show { credential } => {
            let v = api
                .get(&format!("/api/v1/credentials/{}", enc(&credential)))
                .await?;
            let names: Vec<&str> = v["server_names"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str())
                .collect();
            emit(
                out,
                &v,
                &Human::line(format!("{}\nservers: {}", line_of(&v), names.join(", "))),
            );
        }
        CredentialsCmd::Add { name, secrets } => {
            let mut b = body_of(&secrets)?;
            if b.get("private_key").is_none() && b.get("password").is_none() {
                bail!("give --key-file FILE or --password-file FILE");
            }
            b["name"] = json!(name);
            let r: Reply<Value> = api.post_as("/api/v1/credentials", &b).await?;
            emit(
                out,
                &r.raw,
                &Human::line(format!("created {}", line_of(&r.body))),
            );
        }
        CredentialsCmd::Rotate {
            credential,
            name,
            secrets,
        } => {
            let mut b = body_of(&secrets)?;
            if let Some(n) = name {
                b["name"] = json!(n);
            }
            if b.as_object().is_some_and(|o| o.is_empty()) {
                bail!("nothing to change: give --key-file, --password-file, --passphrase-file, --certificate-file, --sudo-password-file or --name");
            }
            let r: Reply<Value> = api
                .send_as(
                    api.request(
                        reqwest::Method::PUT,
                        &format!("/api/v1/credentials/{}", enc(&credential)),
                    )
                    .json(&b),
                )
                .await?;
            emit(
                out,
                &r.raw,
                &Human::line(format!("rotated {}", line_of(&r.body))),
            );
        }
        CredentialsCmd::Rm { credential } => {
            api.delete(&format!("/api/v1/credentials/{}", enc(&credential)))
                .await?;
            emit(
                out,
                &json!({ "deleted": credential }),
                &Human::line(format!("credential {credential} deleted")),
            );
        }
    }
    Ok(0)
}

#[derive(Subcommand)]
pub enum TrustedCasCmd {
    /// List trusted CAs.
    #[command(after_help = "Example:\n  remora trusted-cas list")]
    List,
    /// Trust a CA's host certificates for the hosts matching the patterns.
    #[command(
        after_help = "Example:\n  remora trusted-cas add corp --key-file ca.pub --pattern '*.prod.example.com' --pattern '!db.prod.example.com'"
    )]
    Add {
        name: String,
        /// The CA's public key file (`ca.pub`).
        #[arg(long)]
        key_file: PathBuf,
        /// Host pattern it may vouch for (repeatable; `*`, `?`, leading `!` negates).
        #[arg(long = "pattern", required = true)]
        patterns: Vec<String>,
    },
    /// Stop trusting a CA (from the next connection on).
    #[command(after_help = "Example:\n  remora trusted-cas rm corp")]
    Rm { ca: String },
}

pub async fn run_cas(api: &Api, out: Output, c: TrustedCasCmd) -> Result<i32> {
    match c {
        TrustedCasCmd::List => {
            let v = api.get("/api/v1/trusted-cas").await?;
            let mut t = table(&["NAME", "FINGERPRINT", "PATTERNS"]);
            for c in v["trusted_cas"].as_array().into_iter().flatten() {
                let pats: Vec<&str> = c["patterns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.as_str())
                    .collect();
                t.add_row(vec![
                    c["name"].as_str().unwrap_or("").to_string(),
                    c["fingerprint"].as_str().unwrap_or("").to_string(),
                    pats.join(" "),
                ]);
            }
            emit(out, &v, &Human::table(t));
        }
        TrustedCasCmd::Add {
            name,
            key_file,
            patterns,
        } => {
            let key = read_secret(&key_file, true)?;
            let r: Reply<Value> = api
                .post_as(
                    "/api/v1/trusted-cas",
                    &json!({ "name": name, "public_key": key, "patterns": patterns }),
                )
                .await?;
            emit(
                out,
                &r.raw,
                &Human::line(format!(
                    "trusted CA {} ({}) added",
                    r.body["name"].as_str().unwrap_or(""),
                    r.body["fingerprint"].as_str().unwrap_or("")
                )),
            );
        }
        TrustedCasCmd::Rm { ca } => {
            api.delete(&format!("/api/v1/trusted-cas/{}", enc(&ca)))
                .await?;
            emit(
                out,
                &json!({ "deleted": ca }),
                &Human::line(format!("trusted CA {ca} removed")),
            );
        }
    }
    Ok(0)
}
