-- Host-key trust (issue 12): when the pinned key was first seen (set by trust on first use, by an
-- accept and by a known_hosts import), and the key a host presented when it did not match its pin
-- (recorded by checks and jobs, shown next to the pinned one for review; cleared by an accept).
ALTER TABLE servers ADD COLUMN host_key_first_seen_at BIGINT;
ALTER TABLE servers ADD COLUMN host_key_presented TEXT;
-- Pins that existed before this migration were first seen no later than the server's last change.
UPDATE servers SET host_key_first_seen_at = updated_at WHERE host_key_fingerprint IS NOT NULL;
