-- Remora schema (PostgreSQL). Booleans are BIGINT 0/1 and times are BIGINT
-- milliseconds since the epoch so that one query text serves SQLite and
-- PostgreSQL (see src/lib.rs).
CREATE TABLE servers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    hostname TEXT NOT NULL,
    port BIGINT NOT NULL,
    username TEXT NOT NULL,
    auth_type TEXT NOT NULL,
    password_enc BYTEA,
    private_key_enc BYTEA,
    passphrase_enc BYTEA,
    pem_file_id TEXT,
    is_active BIGINT NOT NULL DEFAULT 1,
    tags TEXT NOT NULL DEFAULT '[]',
    max_concurrency BIGINT NOT NULL DEFAULT 10,
    host_key_fingerprint TEXT,
    last_status TEXT,
    last_checked_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE pem_files (
    id TEXT PRIMARY KEY,
    key_type TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    content_enc BYTEA NOT NULL,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    command TEXT,
    args TEXT NOT NULL DEFAULT '[]',
    script TEXT,
    shell TEXT,
    server_id TEXT NOT NULL,
    batch_id TEXT,
    status TEXT NOT NULL,
    priority BIGINT NOT NULL,
    timeout_secs BIGINT NOT NULL,
    exit_code BIGINT,
    exit_signal TEXT,
    error TEXT,
    error_code TEXT,
    attempt BIGINT NOT NULL DEFAULT 0,
    max_retries BIGINT NOT NULL DEFAULT 0,
    worker_id TEXT,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    stdout_bytes BIGINT NOT NULL DEFAULT 0,
    stderr_bytes BIGINT NOT NULL DEFAULT 0,
    truncated BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX jobs_created ON jobs (created_at, id);
CREATE INDEX jobs_status_created ON jobs (status, created_at);
CREATE INDEX jobs_server_created ON jobs (server_id, created_at);
CREATE INDEX jobs_batch ON jobs (batch_id);
CREATE INDEX jobs_worker_status ON jobs (worker_id, status);

-- Output is appended as chunks; a job's stream is the concatenation of its
-- chunks in seq order.
CREATE TABLE job_output (
    job_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    stream BIGINT NOT NULL,
    data BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    version TEXT NOT NULL,
    concurrency BIGINT NOT NULL,
    running BIGINT NOT NULL DEFAULT 0,
    started_at BIGINT NOT NULL,
    last_heartbeat_at BIGINT NOT NULL,
    status TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
