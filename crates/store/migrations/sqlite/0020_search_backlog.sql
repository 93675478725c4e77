-- The search index (0004, 0018) was written in the transaction of every job's insert: an FTS5
-- segment, its structure record, the content and docsize rows and a key per submission, which
-- made the search index the largest part of a single submission's commit (bench/ssh/cpu.py:
-- about a quarter of Remora's CPU per single-submitted job, and half a millisecond of POST
-- latency). A new job's id now goes to `jobs_fts_backlog` (one row in one b-tree); the API's
-- search indexer (`Store::index_search_backlog`) moves the backlog into the index in batches of
-- up to 2,000, in their own transactions, about once a second. A search reads the index and
-- the jobs of the backlog (by LIKE, exact): nothing is ever missing from its results meanwhile.
CREATE TABLE jobs_fts_backlog (
    id TEXT PRIMARY KEY
) WITHOUT ROWID;

DROP TRIGGER jobs_fts_insert;
DROP TRIGGER jobs_fts_delete;
DROP TRIGGER jobs_fts_update;

CREATE TRIGGER jobs_fts_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO jobs_fts_backlog (id) VALUES (new.id);
END;

CREATE TRIGGER jobs_fts_delete AFTER DELETE ON jobs BEGIN
    DELETE FROM jobs_fts WHERE rowid = (SELECT rid FROM jobs_fts_keys WHERE id = old.id);
    DELETE FROM jobs_fts_keys WHERE id = old.id;
    DELETE FROM jobs_fts_backlog WHERE id = old.id;
END;

CREATE TRIGGER jobs_fts_update AFTER UPDATE OF id, command, script ON jobs BEGIN
    DELETE FROM jobs_fts WHERE rowid = (SELECT rid FROM jobs_fts_keys WHERE id = old.id);
    DELETE FROM jobs_fts_keys WHERE id = old.id;
    DELETE FROM jobs_fts_backlog WHERE id = old.id;
    INSERT INTO jobs_fts_backlog (id) VALUES (new.id);
END;
