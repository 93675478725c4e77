-- Per-job execution options (issue 11): a pseudo-terminal, sudo ("become") to another user, and
-- environment variables (a JSON object of NAME -> value, names [A-Za-z_][A-Za-z0-9_]*). The sudo
-- password belongs to the server's credentials and is sealed by the Vault like the others; it
-- reaches sudo on stdin only.
ALTER TABLE jobs ADD COLUMN pty BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN become BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN become_user TEXT;
ALTER TABLE jobs ADD COLUMN env TEXT NOT NULL DEFAULT '{}';
ALTER TABLE servers ADD COLUMN sudo_password_enc BLOB;
