-- Workspace schedules (autostart, autostop) and activity.

-- autostart: a cron spec ("CRON_TZ=Europe/Berlin 30 8 * * 1-5"), '' for
-- none. ttl_ms: autostop this long after the workspace started or was
-- last in use, 0 for none.
ALTER TABLE workspaces ADD COLUMN autostart TEXT NOT NULL DEFAULT '';
ALTER TABLE workspaces ADD COLUMN ttl_ms BIGINT NOT NULL DEFAULT 0;
-- When the agent last reported an open SSH session, port-forward or
-- daemon connection (Unix milliseconds, 0: never).
ALTER TABLE workspaces ADD COLUMN last_activity_at BIGINT NOT NULL DEFAULT 0;
-- The scheduler's persisted markers, each changed by compare-and-swap in
-- the transaction that queues the build, so that a slot or a start is
-- acted on once: autostart_after is the time after which the next
-- autostart slot is looked for; autostop_build_id is the start build
-- last stopped by the TTL.
ALTER TABLE workspaces ADD COLUMN autostart_after BIGINT NOT NULL DEFAULT 0;
ALTER TABLE workspaces ADD COLUMN autostop_build_id BIGINT NOT NULL DEFAULT 0;

-- What initiated a build besides a user: '' (the user in initiator_id),
-- 'autostart' or 'autostop' (the workspace's schedule).
ALTER TABLE builds ADD COLUMN initiated_by TEXT NOT NULL DEFAULT '';

-- A template's schedule policy: the TTL of new workspaces (0: none) and
-- the longest TTL a workspace may have (0: no limit).
ALTER TABLE templates ADD COLUMN default_ttl_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE templates ADD COLUMN max_ttl_ms BIGINT NOT NULL DEFAULT 0;
