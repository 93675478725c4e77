-- What a worker's connection cache is checked against (issue 15): a counter that every change
-- to what a connection is made from moves on (a server's address, user, credential, jump host,
-- pin, or deletion; any credential; any trusted CA). A claim returns it with the job, and a
-- worker reuses the connection target it built for a server only while the counter is the same,
-- so it reads no server, secret or CA per job and never uses a changed one.
-- Status columns that checks and jobs update (last_status, last_checked_at, host_key_presented)
-- do not move it.
CREATE TABLE conn_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n BIGINT NOT NULL
);
INSERT INTO conn_generation (id, n) VALUES (1, 0);

CREATE TRIGGER conn_gen_servers_update
AFTER UPDATE OF name, hostname, port, username, auth_type, credential_id, pem_file_id,
    jump_server_id, host_key_fingerprint, is_active ON servers
BEGIN
    UPDATE conn_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER conn_gen_servers_delete AFTER DELETE ON servers
BEGIN
    UPDATE conn_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER conn_gen_credentials_insert AFTER INSERT ON credentials
BEGIN
    UPDATE conn_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER conn_gen_credentials_update AFTER UPDATE ON credentials
BEGIN
    UPDATE conn_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER conn_gen_credentials_delete AFTER DELETE ON credentials
BEGIN
    UPDATE conn_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER conn_gen_cas_insert AFTER INSERT ON trusted_cas
BEGIN
    UPDATE conn_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER conn_gen_cas_update AFTER UPDATE ON trusted_cas
BEGIN
    UPDATE conn_generation SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER conn_gen_cas_delete AFTER DELETE ON trusted_cas
BEGIN
    UPDATE conn_generation SET n = n + 1 WHERE id = 1;
END;
