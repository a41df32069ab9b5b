-- At most one build of a workspace is active (running or canceling). The
-- build queue's claim query already picks only builds whose workspace has
-- none; this index makes the database refuse a second one even if two
-- coordinators claim at the same moment.
CREATE UNIQUE INDEX builds_one_active ON builds (workspace_id) WHERE status IN ('running', 'canceling');
