-- The job list sorts by created_at (default), started_at, finished_at, priority or status, always
-- with id as the tie-break (store::list_jobs_page). Without an index that ends in (column, id), a
-- sorted page sorts every job: 48 ms (SQLite) / 18 ms (PostgreSQL) at p50 for sort_by=started_at
-- over 100,000 jobs, ten times that over a million. jobs_finished (finished_at) also serves the
-- NDJSON export, which orders by (finished_at, id).
DROP INDEX IF EXISTS jobs_finished;
CREATE INDEX jobs_finished ON jobs (finished_at, id);
CREATE INDEX jobs_started ON jobs (started_at, id);
CREATE INDEX jobs_priority ON jobs (priority, id);
CREATE INDEX jobs_status_id ON jobs (status, id);

-- Every claim counts the server's running jobs (max_concurrency). Through jobs_server_created
-- that read every job the server ever ran: 15 ms for 75,000 jobs on SQLite, on the single
-- writer; through this index it reads only the running ones (0.03 ms).
CREATE INDEX jobs_server_status ON jobs (server_id, status);
