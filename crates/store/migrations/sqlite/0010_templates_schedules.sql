-- Templates, schedules and incoming triggers (issue 13). A template's definition is one JSON
-- document per version (template_versions.body, the domain's TemplateDef); every edit inserts a
-- new version and moves templates.current_version. Jobs record which template and version they
-- ran, which schedule fired them, and their parameter values sealed by the Vault (params_enc:
-- the worker opens it to set REMORA_PARAM_<NAME> and to mask secret values in output).
CREATE TABLE templates (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    current_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE template_versions (
    template_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (template_id, version)
);

-- A schedule fires its template when next_run_at (the cron time next_due_at plus its jitter)
-- has passed. Instances claim a due time with one conditional UPDATE on next_due_at, and the
-- fire is recorded in schedule_runs, unique per (schedule_id, due_at): a due time fires once
-- however many API instances tick.
CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    template_id TEXT NOT NULL,
    params_enc BLOB,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    overlap TEXT NOT NULL,
    catch_up BIGINT NOT NULL DEFAULT 0,
    jitter_secs BIGINT NOT NULL DEFAULT 0,
    next_due_at BIGINT,
    next_run_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX schedules_due ON schedules (enabled, next_run_at);

CREATE TABLE schedule_runs (
    schedule_id TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    job_ids TEXT NOT NULL DEFAULT '[]',
    batch_id TEXT,
    reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (schedule_id, due_at)
);
CREATE INDEX schedule_runs_status ON schedule_runs (status, schedule_id);

CREATE TABLE template_triggers (
    id TEXT PRIMARY KEY,
    template_id TEXT NOT NULL,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX template_triggers_template ON template_triggers (template_id);

ALTER TABLE jobs ADD COLUMN template_id TEXT;
ALTER TABLE jobs ADD COLUMN template_version BIGINT;
ALTER TABLE jobs ADD COLUMN schedule_id TEXT;
ALTER TABLE jobs ADD COLUMN params_enc BLOB;
CREATE INDEX jobs_schedule_status ON jobs (schedule_id, status);
