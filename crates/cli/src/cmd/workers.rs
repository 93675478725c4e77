//! `remora workers`: the registered workers, up or down, and their load.

use crate::client::{Api, Reply};
use crate::render::{ago, emit, paint_status, table, Human, Output, View};
use crate::responses::WorkerList;
use anyhow::Result;

pub async fn run(api: &Api, out: Output) -> Result<i32> {
    let r: Reply<WorkerList> = api.get_as("/api/v1/workers").await?;
    emit(out, &r.raw, &r.body);
    Ok(0)
}

impl View for WorkerList {
    fn human(&self) -> Human {
        let mut t = table(&[
            "ID",
            "HOST",
            "UP",
            "RUNNING",
            "CONCURRENCY",
            "LAST HEARTBEAT",
            "VERSION",
        ]);
        for w in &self.workers {
            t.add_row(vec![
                w.id.clone(),
                w.hostname.clone(),
                paint_status(&w.up.to_string()),
                w.running.to_string(),
                w.concurrency.to_string(),
                ago(w.last_heartbeat_at),
                w.version.clone(),
            ]);
        }
        Human::table(t)
    }
}
