-- List queries order by (created_at, id): indexes that end in both let every
-- filtered list read its page straight from the index, with no sort.
DROP INDEX IF EXISTS jobs_status_created;
DROP INDEX IF EXISTS jobs_server_created;
DROP INDEX IF EXISTS jobs_batch;
CREATE INDEX jobs_status_created ON jobs (status, created_at, id);
CREATE INDEX jobs_server_created ON jobs (server_id, created_at, id);
CREATE INDEX jobs_batch_created ON jobs (batch_id, created_at, id);
