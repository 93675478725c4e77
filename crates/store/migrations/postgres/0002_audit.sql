-- Audit log of mutating API actions, and a passphrase for uploaded keys.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    token_id TEXT,
    action TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT,
    detail TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_created ON audit_log (created_at);
ALTER TABLE pem_files ADD COLUMN passphrase_enc BYTEA;
CREATE INDEX jobs_finished ON jobs (finished_at);
