//! `remora rekey`: re-encrypt every stored secret under a new master key,
//! writing the new key to disk before any value is sealed with it.

use anyhow::{Context, Result};

#[derive(clap::Args)]
pub struct RekeyArgs {
    #[command(flatten)]
    store: remora_store::config::StoreArgs,
    /// The new key (64 hex chars or base64 of 32 bytes); default: generated.
    #[arg(long, hide_env_values = true)]
    new_key: Option<String>,
}

pub async fn run(a: RekeyArgs) -> Result<i32> {
    use remora_store::vault::{parse_key, write_private_file};
    let (store, old) = a.store.open().await?;
    let key: [u8; 32] = match &a.new_key {
        Some(k) => parse_key(k)?,
        None => {
            let mut k = [0u8; 32];
            use rand::RngCore;
            rand::rngs::OsRng.fill_bytes(&mut k);
            k
        }
    };
    let new = remora_store::Vault::new(key);
    // The new key is on disk before any value is sealed with it.
    let dir = &a.store.data_dir;
    let staged = dir.join("master.key.new");
    write_private_file(&staged, hex::encode(key).as_bytes())
        .with_context(|| format!("writing {}", staged.display()))?;
    let n = store.rekey(&old, &new).await?;
    if a.store
        .master_key
        .as_deref()
        .is_some_and(|k| !k.trim().is_empty())
    {
        println!("{}", hex::encode(key));
        eprintln!(
            "re-encrypted {n} secret(s) under key {} (also saved 0600 in {}).",
            new.key_id(),
            staged.display()
        );
        eprintln!("Set REMORA_MASTER_KEY to the key above on every API and worker (REMORA_MASTER_KEY_PREVIOUS=<old key> during the rollout) and restart them. Until they restart, processes still running the old key seal new values with it: those stay readable only while REMORA_MASTER_KEY_PREVIOUS holds the old key.");
    } else {
        let current = dir.join("master.key");
        let backup = dir.join(format!(
            "master.key.previous-{}",
            remora_domain::time::now_ms()
        ));
        std::fs::rename(&current, &backup)
            .with_context(|| format!("keeping the old key as {}", backup.display()))?;
        std::fs::rename(&staged, &current)
            .with_context(|| format!("installing {}", current.display()))?;
        eprintln!(
            "re-encrypted {n} secret(s) under key {}; {} holds it, the old key is kept in {}.",
            new.key_id(),
            current.display(),
            backup.display()
        );
        eprintln!(
            "Restart the API and the workers to use it. Until they restart, processes still running \
             the old key seal new values with it: set REMORA_MASTER_KEY_PREVIOUS to the key in {} \
             on every process so those values stay readable (then run `remora rekey` again).",
            backup.display()
        );
    }
    Ok(0)
}
