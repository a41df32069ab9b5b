-- The TCP ports listening in a workspace, as its agent last reported them
-- (POST /api/v1/agent/ports): a JSON list of client.ListeningPort, or
-- why the agent cannot report them.
CREATE TABLE agent_ports (
    agent_id    INTEGER PRIMARY KEY REFERENCES agents(id) ON DELETE CASCADE,
    ports       TEXT NOT NULL DEFAULT '[]',
    unsupported TEXT NOT NULL DEFAULT '',
    updated_at  BIGINT NOT NULL
);
