//! Settings every component that opens the database shares.

use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Directory for the SQLite database, the master key and generated tokens.
    #[arg(long, env = "REMORA_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://…`; default: SQLite in the data dir.
    #[arg(long, env = "REMORA_DATABASE_URL")]
    pub database_url: Option<String>,
    /// 32-byte key (64 hex chars or base64) that encrypts secrets at rest;
    /// default: `master.key` in the data dir, generated 0600 on first start.
    #[arg(long, env = "REMORA_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// Earlier master keys (comma-separated), still accepted for reading
    /// while `remora rekey` rolls secrets over to the current key.
    #[arg(
        long,
        env = "REMORA_MASTER_KEY_PREVIOUS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub master_key_previous: Option<Vec<String>>,
}

impl StoreArgs {
    pub fn url(&self) -> String {
        self.database_url
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| crate::default_url(&self.data_dir))
    }

    /// Create the data dir, connect (running migrations) and load the vault.
    pub async fn open(&self) -> anyhow::Result<(crate::Store, crate::Vault)> {
        use anyhow::Context;
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating data dir {}", self.data_dir.display()))?;
        let store = crate::Store::connect(&self.url())
            .await
            .with_context(|| "opening the database (REMORA_DATABASE_URL)".to_string())?;
        let vault = self.vault()?;
        Ok((store, vault))
    }

    /// The vault: the current master key and any previous ones.
    pub fn vault(&self) -> anyhow::Result<crate::Vault> {
        use anyhow::Context;
        let mut previous = Vec::new();
        for k in self
            .master_key_previous
            .iter()
            .flatten()
            .map(|k| k.trim())
            .filter(|k| !k.is_empty())
        {
            previous.push(crate::vault::parse_key(k).context("REMORA_MASTER_KEY_PREVIOUS")?);
        }
        Ok(
            crate::Vault::load(self.master_key.as_deref(), &self.data_dir)
                .context("loading the master key")?
                .with_previous(&previous),
        )
    }
}
