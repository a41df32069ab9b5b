package store

import (
	"context"
)

// Queries for what workspace agents report and for revoking an agent's
// credentials; the rest of the agent queries are in agents.go.

// SetAgentPlatform records the OS and architecture an agent reports.
func (s *Store) SetAgentPlatform(ctx context.Context, id int64, os, arch string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE agents SET os = ?, arch = ? WHERE id = ?`, os, arch, id)
	return affectedOne(res, err)
}

// CountAgentLogs returns how many log lines an agent has stored.
func (s *Store) CountAgentLogs(ctx context.Context, agentID int64) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM agent_logs WHERE agent_id = ?`, agentID).Scan(&n)
	return n, err
}

// RevokeAgentAuthKeys revokes every unrevoked tailnet auth key minted for
// an agent, so that none can register a node once the agent is gone. It
// returns how many were revoked. auth_keys.agent_id has no foreign key
// (the table predates agents), so deleting the agent does not do this.
func (s *Store) RevokeAgentAuthKeys(ctx context.Context, agentID int64) (int64, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE auth_keys SET revoked_at = ? WHERE agent_id = ? AND revoked_at = 0`, nowMillis(), agentID)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// SetAgentStartup sets what an agent's manifest tells it to run: its
// startup script, working directory and environment (a JSON object).
// Provisioning sets these when it creates agents; an external workspace's
// agent starts with none.
func (s *Store) SetAgentStartup(ctx context.Context, id int64, script, dir, env string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE agents SET startup_script = ?, dir = ?, env = ? WHERE id = ?`,
		script, dir, orDefault(env, "{}"), id)
	return affectedOne(res, err)
}
