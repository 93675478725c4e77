//! `remora pem …`: upload (encrypted at rest), list and delete private keys.

use crate::client::{enc, Api, Reply};
use crate::render::{ago, emit, table, Human, Output, View};
use crate::responses::{PemFile, PemList};
use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub enum PemCmd {
    /// Upload a private key file (it must parse; it is stored encrypted).
    #[command(
        after_help = "Example:\n  remora pem upload ~/.ssh/deploy.pem\n  remora servers add web1 --host 10.0.0.5 --user deploy --pem <id>"
    )]
    Upload {
        file: std::path::PathBuf,
        /// Read the key's passphrase from this environment variable.
        #[arg(long)]
        passphrase_env: Option<String>,
    },
    /// List uploaded keys.
    #[command(after_help = "Example:\n  remora pem list")]
    List,
    /// Delete an uploaded key no server uses.
    #[command(after_help = "Example:\n  remora pem rm 0199…")]
    Rm { id: String },
}

pub async fn run(api: &Api, out: Output, c: PemCmd) -> Result<i32> {
    match c {
        PemCmd::Upload {
            file,
            passphrase_env,
        } => {
            let text =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            // The file name never reaches the server's filesystem; send a neutral one.
            let mut form = reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(text).file_name("key"),
            );
            if let Some(var) = passphrase_env {
                form = form.text(
                    "passphrase",
                    std::env::var(&var)
                        .with_context(|| format!("environment variable {var} is not set"))?,
                );
            }
            let r: Reply<PemFile> = api
                .send_as(
                    api.request(reqwest::Method::POST, "/api/v1/pem-files")
                        .multipart(form),
                )
                .await?;
            let p = &r.body;
            emit(
                out,
                &r.raw,
                &Human::line(format!(
                    "uploaded {} key {} (id {})",
                    p.key_type, p.fingerprint, p.id
                )),
            );
            Ok(0)
        }
        PemCmd::List => {
            let r: Reply<PemList> = api.get_as("/api/v1/pem-files").await?;
            emit(out, &r.raw, &r.body);
            Ok(0)
        }
        PemCmd::Rm { id } => {
            api.delete(&format!("/api/v1/pem-files/{}", enc(&id)))
                .await?;
            emit(
                out,
                &json!({ "deleted": id }),
                &Human::line(format!("key {id} deleted")),
            );
            Ok(0)
        }
    }
}

impl View for PemList {
    fn human(&self) -> Human {
        let mut t = table(&["ID", "TYPE", "FINGERPRINT", "SIZE", "UPLOADED"]);
        for p in &self.pem_files {
            t.add_row(vec![
                p.id.clone(),
                p.key_type.clone(),
                p.fingerprint.clone(),
                p.size.to_string(),
                ago(p.created_at),
            ]);
        }
        Human::table(t)
    }
}
