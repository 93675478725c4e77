//! `remora batches ID`: the per-server grid of a multi-server submission.

use crate::client::{enc, Api, Reply};
use crate::render::{emit, opt, paint_status, table, Human, Output, View};
use crate::responses::BatchView;
use anyhow::Result;

pub async fn run(api: &Api, out: Output, id: &str) -> Result<i32> {
    let r: Reply<BatchView> = api.get_as(&format!("/api/v1/batches/{}", enc(id))).await?;
    emit(out, &r.raw, &Grid { id, batch: &r.body });
    Ok(0)
}

struct Grid<'a> {
    id: &'a str,
    batch: &'a BatchView,
}

impl View for Grid<'_> {
    fn human(&self) -> Human {
        let mut t = table(&["SERVER", "STATUS", "EXIT", "JOB", "ERROR"]);
        for c in &self.batch.servers {
            t.add_row(vec![
                opt(&c.server_name),
                paint_status(c.status.as_str()),
                opt(&c.exit_code),
                c.job_id.clone(),
                opt(&c.error),
            ]);
        }
        let summary: Vec<String> = self
            .batch
            .summary
            .iter()
            .filter(|(_, n)| **n != 0)
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        Human::table(t).note(format!("batch {}: {}", self.id, summary.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::responses::BatchCell;
    use remora_domain::JobStatus;

    #[test]
    fn the_footer_counts_only_the_statuses_present() {
        let batch = BatchView {
            summary: [("completed", 2), ("failed", 1), ("queued", 0)]
                .into_iter()
                .map(|(k, n)| (k.to_string(), n))
                .collect(),
            servers: vec![BatchCell {
                server_name: None,
                job_id: "j1".into(),
                status: JobStatus::Failed,
                exit_code: Some(3),
                error: None,
            }],
        };
        let h = Grid {
            id: "b1",
            batch: &batch,
        }
        .human();
        assert_eq!(h.stderr, "batch b1: completed: 2, failed: 1\n");
        assert!(h.stdout.contains("j1") && h.stdout.contains("failed"));
    }
}
