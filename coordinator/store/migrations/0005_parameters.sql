-- Template parameters (devmesh_parameter) and template lifecycle.

-- JSON list of a version's parameter declarations (see provision/param).
ALTER TABLE template_versions ADD COLUMN parameters TEXT NOT NULL DEFAULT '[]';

-- JSON object of the parameter values a build ran with. A build queued
-- without values carries those of the workspace's previous build.
ALTER TABLE builds ADD COLUMN parameters TEXT NOT NULL DEFAULT '{}';

-- When the template was archived (0: it is not): hidden from lists, no new
-- workspaces.
ALTER TABLE templates ADD COLUMN archived_at BIGINT NOT NULL DEFAULT 0;
