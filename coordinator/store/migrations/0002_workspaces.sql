-- Workspaces, their agents, templates and builds. A workspace is either
-- external (template_id NULL: bring your own machine) or built from a
-- template version by terraform.

CREATE TABLE templates (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    created_by        INTEGER NOT NULL REFERENCES users(id),
    active_version_id INTEGER,
    created_at        BIGINT NOT NULL
);

CREATE TABLE template_versions (
    id           INTEGER PRIMARY KEY,
    template_id  INTEGER NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    message      TEXT NOT NULL DEFAULT '',
    archive      BLOB NOT NULL,
    archive_hash TEXT NOT NULL,
    -- JSON list of the template's variables (name, type, default, ...).
    variables    TEXT NOT NULL DEFAULT '[]',
    created_by   INTEGER NOT NULL REFERENCES users(id),
    created_at   BIGINT NOT NULL,
    UNIQUE (template_id, version)
);

CREATE TABLE workspaces (
    id                  INTEGER PRIMARY KEY,
    uuid                TEXT NOT NULL UNIQUE,
    owner_id            INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    template_id         INTEGER REFERENCES templates(id),
    template_version_id INTEGER REFERENCES template_versions(id),
    -- JSON object of variable values given at create.
    variables           TEXT NOT NULL DEFAULT '{}',
    -- Last terraform state written by a build (kept on failure too).
    tf_state            BLOB,
    created_at          BIGINT NOT NULL,
    UNIQUE (owner_id, name)
);

CREATE TABLE agents (
    id                INTEGER PRIMARY KEY,
    uuid              TEXT NOT NULL UNIQUE,
    workspace_id      INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    -- SHA-256 of the agent token; the token itself is never stored.
    token_hash        TEXT NOT NULL UNIQUE,
    build_id          INTEGER,
    os                TEXT NOT NULL DEFAULT '',
    arch              TEXT NOT NULL DEFAULT '',
    dir               TEXT NOT NULL DEFAULT '',
    env               TEXT NOT NULL DEFAULT '{}',
    startup_script    TEXT NOT NULL DEFAULT '',
    -- created, starting, ready, start_error, shutting_down, off
    lifecycle         TEXT NOT NULL DEFAULT 'created',
    version           TEXT NOT NULL DEFAULT '',
    ssh_host_key      TEXT NOT NULL DEFAULT '',
    connections       BIGINT NOT NULL DEFAULT 0,
    rx_bytes          BIGINT NOT NULL DEFAULT 0,
    tx_bytes          BIGINT NOT NULL DEFAULT 0,
    first_connected_at BIGINT NOT NULL DEFAULT 0,
    last_seen_at      BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE agent_logs (
    id         INTEGER PRIMARY KEY,
    agent_id   INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    stream     TEXT NOT NULL DEFAULT 'stdout',
    output     TEXT NOT NULL
);
CREATE INDEX agent_logs_agent ON agent_logs (agent_id, id);

CREATE TABLE builds (
    id                  INTEGER PRIMARY KEY,
    workspace_id        INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    number              INTEGER NOT NULL,
    -- start, stop, delete
    transition          TEXT NOT NULL,
    template_version_id INTEGER REFERENCES template_versions(id),
    -- pending, running, succeeded, failed, canceling, canceled
    status              TEXT NOT NULL,
    reason              TEXT NOT NULL DEFAULT '',
    initiator_id        INTEGER REFERENCES users(id),
    created_at          BIGINT NOT NULL,
    started_at          BIGINT NOT NULL DEFAULT 0,
    finished_at         BIGINT NOT NULL DEFAULT 0,
    UNIQUE (workspace_id, number)
);
CREATE INDEX builds_status ON builds (status, id);

CREATE TABLE build_logs (
    id         INTEGER PRIMARY KEY,
    build_id   INTEGER NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    stage      TEXT NOT NULL DEFAULT '',
    level      TEXT NOT NULL DEFAULT 'info',
    output     TEXT NOT NULL
);
CREATE INDEX build_logs_build ON build_logs (build_id, id);

-- Metadata items (devmesh_metadata) from the latest build.
CREATE TABLE workspace_metadata (
    id           INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    resource     TEXT NOT NULL,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL,
    sensitive    INTEGER NOT NULL DEFAULT 0
);
