-- What a worker's connection cache is checked against (issue 15); see the SQLite file.
-- The triggers are deferred to COMMIT: a transaction takes the counter's row lock only at its
-- very end, after every other lock it needs, so two transactions that change servers,
-- credentials or CAs in different orders cannot deadlock on it.
CREATE TABLE conn_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n BIGINT NOT NULL
);
INSERT INTO conn_generation (id, n) VALUES (1, 0);

CREATE FUNCTION conn_gen_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conn_generation SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER conn_gen_servers_update
AFTER UPDATE OF name, hostname, port, username, auth_type, credential_id, pem_file_id,
    jump_server_id, host_key_fingerprint, is_active ON servers
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION conn_gen_bump();
CREATE CONSTRAINT TRIGGER conn_gen_servers_delete AFTER DELETE ON servers
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION conn_gen_bump();
CREATE CONSTRAINT TRIGGER conn_gen_credentials AFTER INSERT OR UPDATE OR DELETE ON credentials
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION conn_gen_bump();
CREATE CONSTRAINT TRIGGER conn_gen_cas AFTER INSERT OR UPDATE OR DELETE ON trusted_cas
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION conn_gen_bump();
