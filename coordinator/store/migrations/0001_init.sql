-- Users, credentials, tailnet auth keys, nodes and the server's own keys.
-- Portable SQL: runs on SQLite and PostgreSQL. Times are Unix milliseconds
-- (0 = never); booleans are 0/1 integers.

CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Session and API tokens. Only the SHA-256 of the secret is stored.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX api_tokens_user_name ON api_tokens (user_id, name) WHERE kind = 'api';

-- Tailnet pre-auth keys. Only the SHA-256 of the secret is stored.
CREATE TABLE auth_keys (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    prefix      TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    reusable    INTEGER NOT NULL,
    ephemeral   INTEGER NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT NOT NULL DEFAULT 0,
    revoked_at  BIGINT NOT NULL DEFAULT 0,
    -- Set when the key was minted for a workspace agent (later migration
    -- adds the agents table); NULL for a user's own devices.
    agent_id    INTEGER
);

-- Tailnet nodes. user_id is the owner: the user for a user's device, the
-- workspace owner for an agent node (agent_id set).
CREATE TABLE nodes (
    id          INTEGER PRIMARY KEY,
    stable_id   TEXT NOT NULL UNIQUE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    agent_id    INTEGER,
    machine_key TEXT NOT NULL,
    node_key    TEXT NOT NULL UNIQUE,
    disco_key   TEXT NOT NULL DEFAULT '',
    ipv4        TEXT NOT NULL UNIQUE,
    ipv6        TEXT NOT NULL UNIQUE,
    hostname    TEXT NOT NULL,
    given_name  TEXT NOT NULL,
    hostinfo    TEXT NOT NULL DEFAULT '{}',
    endpoints   TEXT NOT NULL DEFAULT '[]',
    home_derp   INTEGER NOT NULL DEFAULT 0,
    ephemeral   INTEGER NOT NULL DEFAULT 0,
    cap_version INTEGER NOT NULL DEFAULT 0,
    key_expiry  BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX nodes_user ON nodes (user_id);
CREATE INDEX nodes_machine ON nodes (machine_key);
