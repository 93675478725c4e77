-- Notifications (targets, deliveries and their attempts), retention settings
-- and finished jobs' output packed with zstd. See src/notifications.rs,
-- src/retention.rs and src/output.rs.

-- A finished job whose events were not yet turned into deliveries has
-- notified = 0; the dispatcher claims it by setting 1 (exactly once). Jobs
-- that were already final before this migration count as notified.
ALTER TABLE jobs ADD COLUMN notified BIGINT NOT NULL DEFAULT 0;
UPDATE jobs SET notified = 1 WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_unnotified ON jobs (finished_at) WHERE notified = 0 AND finished_at IS NOT NULL;

-- 0: output stored as chunks in job_output; 1: packed in job_output_packed
-- (or the job had no output).
ALTER TABLE jobs ADD COLUMN output_packed BIGINT NOT NULL DEFAULT 0;
CREATE INDEX jobs_unpacked ON jobs (finished_at) WHERE output_packed = 0 AND finished_at IS NOT NULL;

-- Retention purges by status and age.
CREATE INDEX jobs_status_finished ON jobs (status, finished_at);

CREATE TABLE job_output_packed (
    job_id TEXT PRIMARY KEY,
    codec TEXT NOT NULL,
    data BYTEA NOT NULL,
    raw_bytes BIGINT NOT NULL,
    stored_bytes BIGINT NOT NULL,
    chunks BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
-- The compression ratio sums these two columns from the index alone.
CREATE INDEX job_output_packed_sizes ON job_output_packed (raw_bytes, stored_bytes);

-- Key/value settings changed through the API (e.g. retention), JSON values.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE notification_targets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    url TEXT,
    email_to TEXT NOT NULL DEFAULT '[]',
    format TEXT NOT NULL,
    secret_enc BYTEA,
    events TEXT NOT NULL,
    filter_tags TEXT NOT NULL DEFAULT '[]',
    filter_statuses TEXT NOT NULL DEFAULT '[]',
    filter_templates TEXT NOT NULL DEFAULT '[]',
    enabled BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One event for one target. event_key (e.g. job.failed:<job id>) is unique
-- per target, so an event reported twice is delivered once.
CREATE TABLE notification_deliveries (
    id TEXT PRIMARY KEY,
    target_id TEXT NOT NULL,
    event TEXT NOT NULL,
    event_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    claimed_by TEXT,
    created_at BIGINT NOT NULL,
    give_up_at BIGINT NOT NULL,
    last_status_code BIGINT,
    last_error TEXT,
    delivered_at BIGINT,
    UNIQUE (target_id, event_key)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (state, next_attempt_at);
CREATE INDEX notification_deliveries_target ON notification_deliveries (target_id, created_at);

CREATE TABLE notification_attempts (
    delivery_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    at BIGINT NOT NULL,
    status_code BIGINT,
    latency_ms BIGINT NOT NULL,
    error TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
