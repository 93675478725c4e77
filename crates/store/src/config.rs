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
    /// Group commit: at most this many writes (job claims, output appends,
    /// final statuses, submissions) share one transaction.
    #[arg(long, env = "REMORA_STORE_BATCH_OPS", default_value_t = crate::writer::BATCH_OPS as u32, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub store_batch_ops: u32,
    /// Group commit: at most this many bytes (output and job text) per
    /// transaction, unless one write alone is larger.
    #[arg(long, env = "REMORA_STORE_BATCH_BYTES", default_value_t = crate::writer::BATCH_BYTES as u64, value_parser = clap::value_parser!(u64).range(1..=1_073_741_824))]
    pub store_batch_bytes: u64,
    /// Group commit on PostgreSQL: writers running rounds at once (SQLite
    /// has one).
    #[arg(long, env = "REMORA_STORE_BATCH_WRITERS", default_value_t = crate::writer::BATCH_WRITERS as u32, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub store_batch_writers: u32,
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
        let store = crate::Store::connect_with(&self.url(), self.batch_limits())
            .await
            .with_context(|| "opening the database (REMORA_DATABASE_URL)".to_string())?;
        let vault = self.vault()?;
        Ok((store, vault))
    }

    /// The group-commit writer's bounds.
    pub fn batch_limits(&self) -> crate::BatchLimits {
        crate::BatchLimits {
            max_ops: self.store_batch_ops as usize,
            max_bytes: self.store_batch_bytes as usize,
            writers: self.store_batch_writers as usize,
        }
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
