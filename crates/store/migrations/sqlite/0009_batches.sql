-- A multi-server submission's policy and state. `max_parallel` and
-- `fail_threshold` are resolved to host counts at submission (0 = no limit);
-- `state` is running, stopped or canceled (completed/failed derive from the jobs).
CREATE TABLE batches (
    id TEXT PRIMARY KEY,
    total BIGINT NOT NULL,
    max_parallel BIGINT NOT NULL DEFAULT 0,
    fail_threshold BIGINT NOT NULL DEFAULT 0,
    on_fail TEXT NOT NULL DEFAULT 'stop',
    state TEXT NOT NULL DEFAULT 'running',
    source_batch_id TEXT,
    created_at BIGINT NOT NULL,
    stopped_at BIGINT
);
CREATE INDEX jobs_batch_status ON jobs (batch_id, status);
