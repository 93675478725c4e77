-- Free-text job search (`?search=`) is a case-insensitive substring match on a job's id, command
-- and script (store::list_jobs_page). A substring match cannot use a B-tree index; a pg_trgm GIN
-- index on the same expression serves `LIKE '%…%'` for strings of 3 or more characters, and the
-- planner still prefers the created_at index when a string is common.
--
-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension (a database owner may create
-- it). Where it cannot be created the index is skipped and search scans, so a restricted server
-- still starts; `Store::connect` then logs a warning saying so.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX IF NOT EXISTS jobs_search_trgm ON jobs
        USING gin (LOWER(id || ' ' || COALESCE(command, '') || ' ' || COALESCE(script, '')) gin_trgm_ops);
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'job search index skipped (%): search scans the jobs table', SQLERRM;
END
$$;
