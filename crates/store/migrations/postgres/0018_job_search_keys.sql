-- SQLite only (its trigram search index gets stable keys, see the SQLite file); PostgreSQL's
-- search index (0004, pg_trgm GIN) is maintained by PostgreSQL itself. Kept so that both
-- databases have the same migration numbers.
SELECT 1;
