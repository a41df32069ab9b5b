-- Accounts and quotas.

-- A disabled user (disabled_at > 0, Unix milliseconds) cannot log in,
-- their session and API tokens are refused, their auth keys register no
-- node, and their nodes are removed from the tailnet. Enabling sets it
-- back to 0; nothing else is lost.
ALTER TABLE users ADD COLUMN disabled_at BIGINT NOT NULL DEFAULT 0;

-- At most one start or stop build of a workspace is pending or active at
-- a time (a delete may be queued behind it; nothing can follow a delete).
-- Databases from before this rule may hold several queued builds of one
-- workspace: all but the oldest are canceled so that the index applies.
UPDATE builds SET status = 'canceled', reason = 'canceled by the upgrade to one queued build per workspace',
    finished_at = created_at
    WHERE status = 'pending' AND transition <> 'delete' AND EXISTS (
        SELECT 1 FROM builds o WHERE o.workspace_id = builds.workspace_id AND o.id < builds.id
            AND o.transition <> 'delete' AND o.status IN ('pending', 'running', 'canceling'));
UPDATE builds SET status = 'canceled', reason = 'canceled by the upgrade to one queued build per workspace',
    finished_at = created_at
    WHERE status = 'pending' AND transition <> 'delete' AND EXISTS (
        SELECT 1 FROM builds o WHERE o.workspace_id = builds.workspace_id AND o.id <> builds.id
            AND o.transition <> 'delete' AND o.status IN ('running', 'canceling'));
CREATE UNIQUE INDEX builds_one_queued ON builds (workspace_id)
    WHERE status IN ('pending', 'running', 'canceling') AND transition <> 'delete';
