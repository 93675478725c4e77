//! Templates and their versions (every edit a new version), and their incoming-trigger tokens.

use crate::{map_unique, Result, Store, StoreError};
use remora_domain::template::TemplateDef;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A template at one version, as the API returns it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct TemplateRow {
    pub id: String,
    pub name: String,
    /// The version shown (the current one unless a version was asked for).
    pub version: i64,
    pub current_version: i64,
    #[serde(flatten)]
    pub def: TemplateDef,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// An incoming-trigger token of a template (the token itself is never stored).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct TriggerRow {
    pub id: String,
    pub template_id: String,
    pub name: String,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "remora_domain::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<i64>,
    #[serde(with = "remora_domain::time::opt_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<i64>,
}

const TEMPLATE_SELECT: &str = "SELECT t.id, t.name, v.version, t.current_version, v.body, t.created_at, t.updated_at FROM templates t JOIN template_versions v ON v.template_id = t.id";

fn template_from_row(r: &AnyRow) -> Result<TemplateRow> {
    let body: String = r.try_get(4)?;
    Ok(TemplateRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        version: r.try_get(2)?,
        current_version: r.try_get(3)?,
        def: serde_json::from_str(&body)
            .map_err(|e| StoreError::Corrupt(format!("template body: {e}")))?,
        created_at: r.try_get(5)?,
        updated_at: r.try_get(6)?,
    })
}

fn trigger_from_row(r: &AnyRow) -> Result<TriggerRow> {
    Ok(TriggerRow {
        id: r.try_get(0)?,
        template_id: r.try_get(1)?,
        name: r.try_get(2)?,
        created_at: r.try_get(3)?,
        last_used_at: r.try_get(4)?,
        revoked_at: r.try_get(5)?,
    })
}

fn body(def: &TemplateDef) -> Result<String> {
    serde_json::to_string(def).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// A new template at version 1. `Conflict` when the name is taken.
    pub async fn insert_template(&self, name: &str, def: &TemplateDef) -> Result<TemplateRow> {
        let id = remora_domain::new_id();
        let now = remora_domain::time::now_ms();
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        sqlx::query("INSERT INTO templates (id, name, current_version, created_at, updated_at) VALUES ($1, $2, 1, $3, $3)")
            .bind(&id)
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_unique)?;
        sqlx::query("INSERT INTO template_versions (template_id, version, body, created_at) VALUES ($1, 1, $2, $3)")
            .bind(&id)
            .bind(body(def)?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(self.get_template(&id, None).await?.expect("just inserted"))
    }

    /// Save an edit as the next version (and optionally rename). `None` when the template is
    /// gone; `Conflict` when the new name is taken or another edit won the same version.
    pub async fn update_template(
        &self,
        id: &str,
        name: Option<&str>,
        def: &TemplateDef,
    ) -> Result<Option<TemplateRow>> {
        let now = remora_domain::time::now_ms();
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        let Some(row) = sqlx::query("SELECT current_version FROM templates WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let cur: i64 = row.try_get(0)?;
        // The primary key (template_id, version) makes a concurrent edit of the same version fail.
        sqlx::query("INSERT INTO template_versions (template_id, version, body, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(cur + 1)
            .bind(body(def)?)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_unique)?;
        let r = sqlx::query("UPDATE templates SET current_version = $1, updated_at = $2, name = COALESCE($3, name) WHERE id = $4 AND current_version = $5")
            .bind(cur + 1)
            .bind(now)
            .bind(name.map(str::to_string))
            .bind(id)
            .bind(cur)
            .execute(&mut *tx)
            .await
            .map_err(map_unique)?;
        if r.rows_affected() != 1 {
            return Err(StoreError::Conflict {
                constraint: "template_versions_pkey".into(),
            });
        }
        tx.commit().await?;
        self.get_template(id, None).await
    }

    /// A template by id or name, at `version` (default: the current one).
    pub async fn get_template(
        &self,
        id_or_name: &str,
        version: Option<i64>,
    ) -> Result<Option<TemplateRow>> {
        let row = sqlx::query(&format!(
            "{TEMPLATE_SELECT} WHERE (t.id = $1 OR t.name = $1) AND v.version = COALESCE($2, t.current_version) ORDER BY t.id = $1 DESC"
        ))
        .bind(id_or_name)
        .bind(version)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(template_from_row).transpose()
    }

    /// Every template at its current version, by name.
    pub async fn list_templates(&self) -> Result<Vec<TemplateRow>> {
        let rows = sqlx::query(&format!(
            "{TEMPLATE_SELECT} WHERE v.version = t.current_version ORDER BY t.name"
        ))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(template_from_row).collect()
    }

    /// Every version of a template, newest first.
    pub async fn list_template_versions(&self, id: &str) -> Result<Vec<TemplateRow>> {
        let rows = sqlx::query(&format!(
            "{TEMPLATE_SELECT} WHERE t.id = $1 ORDER BY v.version DESC"
        ))
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(template_from_row).collect()
    }

    /// Delete a template, its versions and its triggers. `Conflict` while a schedule uses it.
    pub async fn delete_template(&self, id: &str) -> Result<bool> {
        let mut tx = crate::begin_write(&self.write, self.backend).await?;
        let used: Option<String> =
            sqlx::query("SELECT name FROM schedules WHERE template_id = $1 LIMIT 1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
        if used.is_some() {
            return Err(StoreError::Conflict {
                constraint: "schedules_template_id".into(),
            });
        }
        let r = sqlx::query("DELETE FROM templates WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for q in [
            "DELETE FROM template_versions WHERE template_id = $1",
            "DELETE FROM template_triggers WHERE template_id = $1",
        ] {
            sqlx::query(q).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn insert_trigger(
        &self,
        template_id: &str,
        name: &str,
        token_hash: &str,
    ) -> Result<TriggerRow> {
        let id = remora_domain::new_id();
        let now = remora_domain::time::now_ms();
        sqlx::query("INSERT INTO template_triggers (id, template_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(template_id)
            .bind(name)
            .bind(token_hash)
            .bind(now)
            .execute(&self.write)
            .await
            .map_err(map_unique)?;
        Ok(TriggerRow {
            id,
            template_id: template_id.into(),
            name: name.into(),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        })
    }

    /// The live (not revoked) trigger with this token hash; marks it used.
    pub async fn use_trigger(&self, token_hash: &str) -> Result<Option<TriggerRow>> {
        let row = sqlx::query("SELECT id, template_id, name, created_at, last_used_at, revoked_at FROM template_triggers WHERE token_hash = $1 AND revoked_at IS NULL")
            .bind(token_hash)
            .fetch_optional(&self.read)
            .await?;
        let Some(t) = row.as_ref().map(trigger_from_row).transpose()? else {
            return Ok(None);
        };
        sqlx::query("UPDATE template_triggers SET last_used_at = $1 WHERE id = $2")
            .bind(remora_domain::time::now_ms())
            .bind(&t.id)
            .execute(&self.write)
            .await?;
        Ok(Some(t))
    }

    pub async fn list_triggers(&self, template_id: &str) -> Result<Vec<TriggerRow>> {
        let rows = sqlx::query("SELECT id, template_id, name, created_at, last_used_at, revoked_at FROM template_triggers WHERE template_id = $1 ORDER BY created_at, id")
            .bind(template_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(trigger_from_row).collect()
    }

    /// Revoke a trigger of this template; false when there is no live one.
    pub async fn revoke_trigger(&self, template_id: &str, id: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE template_triggers SET revoked_at = $1 WHERE id = $2 AND template_id = $3 AND revoked_at IS NULL")
            .bind(remora_domain::time::now_ms())
            .bind(id)
            .bind(template_id)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}
