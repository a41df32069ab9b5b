package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// AgentPorts is what an agent last reported about the TCP ports listening
// in its workspace.
type AgentPorts struct {
	AgentID     int64
	Ports       string // JSON list of client.ListeningPort
	Unsupported string // why the agent cannot report ports, or ""
	UpdatedAt   time.Time
}

// SetAgentPorts replaces the agent's report of listening ports.
func (s *Store) SetAgentPorts(ctx context.Context, p AgentPorts) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO agent_ports (agent_id, ports, unsupported, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (agent_id) DO UPDATE SET ports = excluded.ports, unsupported = excluded.unsupported, updated_at = excluded.updated_at`,
		p.AgentID, orDefault(p.Ports, "[]"), p.Unsupported, toMillis(p.UpdatedAt))
	return err
}

// AgentPortsOf returns the agent's latest report of listening ports;
// ErrNotFound if it has made none.
func (s *Store) AgentPortsOf(ctx context.Context, agentID int64) (AgentPorts, error) {
	p := AgentPorts{AgentID: agentID}
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT ports, unsupported, updated_at FROM agent_ports WHERE agent_id = ?`, agentID).
		Scan(&p.Ports, &p.Unsupported, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return AgentPorts{}, ErrNotFound
	}
	p.UpdatedAt = fromMillis(at)
	return p, err
}
