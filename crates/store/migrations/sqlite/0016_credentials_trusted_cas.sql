-- Credentials as objects and trusted SSH certificate authorities (issue 12).
--
-- A credential is a key (private key, optional passphrase, optional OpenSSH user certificate)
-- or a password, plus an optional sudo password, sealed by the Vault like every secret. Many
-- servers reference one through servers.credential_id. A credential with owner_server_id is a
-- server's private one (what inline password / private_key / pem_file_id on a server create);
-- it goes with its server. version grows by one at each rotation.
CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    password_enc BLOB,
    private_key_enc BLOB,
    passphrase_enc BLOB,
    certificate TEXT,
    sudo_password_enc BLOB,
    key_type TEXT,
    fingerprint TEXT,
    owner_server_id TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX credentials_owner ON credentials (owner_server_id);
ALTER TABLE servers ADD COLUMN credential_id TEXT;
CREATE INDEX servers_credential ON servers (credential_id);

-- Every uploaded PEM file becomes one shared key credential with the same id, named pem:ID.
INSERT INTO credentials (id, name, kind, private_key_enc, passphrase_enc, key_type, fingerprint, created_at, updated_at)
SELECT id, 'pem:' || id, 'key', content_enc, passphrase_enc, key_type, fingerprint, created_at, created_at
FROM pem_files;

-- Every server with secrets of its own (a password, a key, a sudo password, or a passphrase
-- overriding its PEM file's) gets a private credential with its id, named server:NAME, holding
-- exactly what the worker used: its own key, else its PEM file's key (copied).
INSERT INTO credentials (id, name, kind, password_enc, private_key_enc, passphrase_enc, sudo_password_enc,
                         key_type, fingerprint, owner_server_id, created_at, updated_at)
SELECT s.id, 'server:' || s.name, s.auth_type, s.password_enc,
       COALESCE(s.private_key_enc, p.content_enc),
       CASE WHEN s.private_key_enc IS NOT NULL THEN s.passphrase_enc
            ELSE COALESCE(s.passphrase_enc, p.passphrase_enc) END,
       s.sudo_password_enc,
       CASE WHEN s.private_key_enc IS NULL THEN p.key_type END,
       CASE WHEN s.private_key_enc IS NULL THEN p.fingerprint END,
       s.id, s.created_at, s.updated_at
FROM servers s LEFT JOIN pem_files p ON p.id = s.pem_file_id
WHERE s.password_enc IS NOT NULL OR s.private_key_enc IS NOT NULL OR s.sudo_password_enc IS NOT NULL
   OR (s.pem_file_id IS NOT NULL AND s.passphrase_enc IS NOT NULL);

UPDATE servers SET credential_id = id WHERE EXISTS (SELECT 1 FROM credentials c WHERE c.id = servers.id);
UPDATE servers SET credential_id = pem_file_id
WHERE credential_id IS NULL AND pem_file_id IS NOT NULL
  AND EXISTS (SELECT 1 FROM credentials c WHERE c.id = servers.pem_file_id);

-- The ciphertexts now live in credentials only (moved as they are: same Vault). The old columns
-- stay, always empty; pem_files keeps each upload's metadata.
UPDATE servers SET password_enc = NULL, private_key_enc = NULL, passphrase_enc = NULL, sudo_password_enc = NULL;
UPDATE pem_files SET content_enc = X'', passphrase_enc = NULL;

-- CA public keys trusted to sign host certificates for the hosts matching patterns (a JSON
-- array of OpenSSH known_hosts patterns: * and ? wildcards, a leading ! negates).
CREATE TABLE trusted_cas (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    public_key TEXT NOT NULL,
    key_type TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    patterns TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
