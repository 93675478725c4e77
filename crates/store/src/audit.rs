//! Audit log: who did what to which object, newest first.

use crate::sql::Conn;
use crate::{Result, Store};
use sqlx::Row;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub token_id: Option<String>,
    pub action: String,
    pub object_type: String,
    pub object_id: Option<String>,
    pub detail: Option<String>,
    #[serde(with = "remora_domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

impl Store {
    pub async fn audit(
        &self,
        token_id: Option<&str>,
        action: &str,
        object_type: &str,
        object_id: Option<&str>,
        detail: Option<&str>,
    ) -> Result<()> {
        let a = crate::writer::NewAudit {
            token_id: token_id.map(str::to_string),
            action: action.to_string(),
            object_type: object_type.to_string(),
            object_id: object_id.map(str::to_string),
            detail: detail.map(str::to_string),
        };
        let mut conn = self.write.acquire().await?;
        insert_in(&mut Conn::Any(&mut conn), &a).await?;
        Ok(())
    }

    pub async fn list_audit(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(&format!(
            "SELECT id, token_id, action, object_type, object_id, detail, created_at FROM audit_log ORDER BY created_at DESC, id DESC LIMIT {}",
            limit.clamp(1, 1000)
        ))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get(0)?,
                    token_id: r.try_get(1)?,
                    action: r.try_get(2)?,
                    object_type: r.try_get(3)?,
                    object_id: r.try_get(4)?,
                    detail: r.try_get(5)?,
                    created_at: r.try_get(6)?,
                })
            })
            .collect()
    }
}

/// An audit row, on the caller's connection (inside its transaction, if any).
pub(crate) async fn insert_in(conn: &mut Conn<'_>, a: &crate::writer::NewAudit) -> Result<()> {
    let id = remora_domain::new_id();
    conn.execute(
        "INSERT INTO audit_log (id, token_id, action, object_type, object_id, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            (&id).into(),
            (&a.token_id).into(),
            (&a.action).into(),
            (&a.object_type).into(),
            (&a.object_id).into(),
            (&a.detail).into(),
            remora_domain::time::now_ms().into(),
        ],
    )
    .await?;
    Ok(())
}
