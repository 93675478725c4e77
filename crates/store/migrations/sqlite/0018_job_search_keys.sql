-- The search index (0004) found a deleted job's row with a trigram MATCH on its id: job ids share
-- most of their trigrams (time-ordered ids), so every delete scanned a large part of the index and
-- a retention purge slowed down quadratically (bench/retention: 40 s for 10,000 jobs, 210 s for
-- 20,000, holding the writer). Each job's index row now has a stable integer key of its own
-- (jobs_fts_keys.rid, an INTEGER PRIMARY KEY, which VACUUM keeps), set as the FTS rowid on insert,
-- so a delete or an update finds its row by rowid.
CREATE TABLE jobs_fts_keys (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE
);

INSERT OR IGNORE INTO jobs_fts_keys (rid, id) SELECT rowid, id FROM jobs_fts;

DROP TRIGGER jobs_fts_insert;
DROP TRIGGER jobs_fts_delete;
DROP TRIGGER jobs_fts_update;

CREATE TRIGGER jobs_fts_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO jobs_fts_keys (id) VALUES (new.id);
    INSERT INTO jobs_fts (rowid, id, command, script)
    VALUES ((SELECT rid FROM jobs_fts_keys WHERE id = new.id), new.id, new.command, new.script);
END;

CREATE TRIGGER jobs_fts_delete AFTER DELETE ON jobs BEGIN
    DELETE FROM jobs_fts WHERE rowid = (SELECT rid FROM jobs_fts_keys WHERE id = old.id);
    DELETE FROM jobs_fts_keys WHERE id = old.id;
END;

CREATE TRIGGER jobs_fts_update AFTER UPDATE OF id, command, script ON jobs BEGIN
    DELETE FROM jobs_fts WHERE rowid = (SELECT rid FROM jobs_fts_keys WHERE id = old.id);
    DELETE FROM jobs_fts_keys WHERE id = old.id;
    INSERT INTO jobs_fts_keys (id) VALUES (new.id);
    INSERT INTO jobs_fts (rowid, id, command, script)
    VALUES ((SELECT rid FROM jobs_fts_keys WHERE id = new.id), new.id, new.command, new.script);
END;
