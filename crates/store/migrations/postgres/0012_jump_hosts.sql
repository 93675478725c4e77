-- Jump hosts (issue 12): a server may be reached through another server (its bastion), a chain
-- of them up to REMORA_MAX_JUMP_DEPTH hops. The API refuses unknown ids and loops; a jump
-- server that is deleted later fails its targets' jobs with jump_failed, naming it.
ALTER TABLE servers ADD COLUMN jump_server_id TEXT;
CREATE INDEX servers_jump_server ON servers (jump_server_id);
