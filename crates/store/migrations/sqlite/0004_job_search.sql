-- Free-text job search (`?search=`) is a case-insensitive substring match on a job's id, command
-- and script. A substring match cannot use a B-tree index, and a full scan of a million jobs takes
-- ~0.4 s; a trigram index finds the rows that contain a string of 3 or more characters directly.
--
-- The FTS table keeps its own copy of the three columns (not `content='jobs'`): an external-content
-- table is keyed by the jobs table's implicit rowid, which VACUUM may renumber (the jobs table has
-- a TEXT primary key), and the index would then point at the wrong jobs.
CREATE VIRTUAL TABLE jobs_fts USING fts5(id, command, script, tokenize = 'trigram');

INSERT INTO jobs_fts (id, command, script) SELECT id, command, script FROM jobs;

CREATE TRIGGER jobs_fts_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO jobs_fts (id, command, script) VALUES (new.id, new.command, new.script);
END;

-- Jobs are not deleted or edited today; these keep the index true if that changes. The MATCH
-- on the id column finds the row through the index instead of scanning the table.
CREATE TRIGGER jobs_fts_delete AFTER DELETE ON jobs BEGIN
    DELETE FROM jobs_fts
    WHERE jobs_fts MATCH '{id}: "' || replace(old.id, '"', '""') || '"' AND id = old.id;
END;

CREATE TRIGGER jobs_fts_update AFTER UPDATE OF id, command, script ON jobs BEGIN
    DELETE FROM jobs_fts
    WHERE jobs_fts MATCH '{id}: "' || replace(old.id, '"', '""') || '"' AND id = old.id;
    INSERT INTO jobs_fts (id, command, script) VALUES (new.id, new.command, new.script);
END;
