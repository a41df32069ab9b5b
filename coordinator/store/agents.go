package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Agent lifecycle states.
const (
	LifecycleCreated      = "created"
	LifecycleStarting     = "starting"
	LifecycleReady        = "ready"
	LifecycleStartError   = "start_error"
	LifecycleShuttingDown = "shutting_down"
	LifecycleOff          = "off"
)

// Agent is a workspace agent. TokenHash is the SHA-256 of its token.
type Agent struct {
	ID               int64
	UUID             string
	WorkspaceID      int64
	Name             string
	TokenHash        string
	BuildID          int64
	OS, Arch, Dir    string
	Env              string // JSON object
	StartupScript    string
	Lifecycle        string
	Version          string
	SSHHostKey       string // authorized_keys format
	Connections      int64
	RxBytes, TxBytes int64
	FirstConnectedAt time.Time
	LastSeenAt       time.Time
	CreatedAt        time.Time
}

const agentCols = `id, uuid, workspace_id, name, token_hash, COALESCE(build_id, 0), os, arch, dir, env, startup_script,
	lifecycle, version, ssh_host_key, connections, rx_bytes, tx_bytes, first_connected_at, last_seen_at, created_at`

func scanAgent(row rowScanner) (Agent, error) {
	var a Agent
	var fc, ls, c int64
	err := row.Scan(&a.ID, &a.UUID, &a.WorkspaceID, &a.Name, &a.TokenHash, &a.BuildID, &a.OS, &a.Arch, &a.Dir,
		&a.Env, &a.StartupScript, &a.Lifecycle, &a.Version, &a.SSHHostKey, &a.Connections, &a.RxBytes, &a.TxBytes,
		&fc, &ls, &c)
	if errors.Is(err, sql.ErrNoRows) {
		return Agent{}, ErrNotFound
	}
	a.FirstConnectedAt, a.LastSeenAt, a.CreatedAt = fromMillis(fc), fromMillis(ls), fromMillis(c)
	return a, err
}

// CreateAgent inserts a. ErrConflict if the workspace has an agent of
// that name.
func (s *Store) CreateAgent(ctx context.Context, a Agent) (Agent, error) {
	out, err := scanAgent(s.db.QueryRowContext(ctx, `INSERT INTO agents
		(uuid, workspace_id, name, token_hash, build_id, os, arch, dir, env, startup_script, lifecycle, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+agentCols,
		a.UUID, a.WorkspaceID, a.Name, a.TokenHash, nullID(a.BuildID), a.OS, a.Arch, a.Dir, orDefault(a.Env, "{}"),
		a.StartupScript, orDefault(a.Lifecycle, LifecycleCreated), nowMillis()))
	if isUniqueViolation(err) {
		return Agent{}, fmt.Errorf("agent %q: %w", a.Name, ErrConflict)
	}
	return out, err
}

// AgentByTokenHash returns the agent whose token hashes to hash.
func (s *Store) AgentByTokenHash(ctx context.Context, hash string) (Agent, error) {
	return scanAgent(s.db.QueryRowContext(ctx, `SELECT `+agentCols+` FROM agents WHERE token_hash = ?`, hash))
}

// AgentByID returns the agent with that ID.
func (s *Store) AgentByID(ctx context.Context, id int64) (Agent, error) {
	return scanAgent(s.db.QueryRowContext(ctx, `SELECT `+agentCols+` FROM agents WHERE id = ?`, id))
}

// ListAgents returns a workspace's agents ordered by name.
func (s *Store) ListAgents(ctx context.Context, workspaceID int64) ([]Agent, error) {
	return queryAll(ctx, s.db, scanAgent, `SELECT `+agentCols+` FROM agents WHERE workspace_id = ? ORDER BY name`, workspaceID)
}

// DeleteAgent removes an agent (its token stops working).
func (s *Store) DeleteAgent(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM agents WHERE id = ?`, id)
	return affectedOne(res, err)
}

// SetAgentLifecycle records the agent's lifecycle state.
func (s *Store) SetAgentLifecycle(ctx context.Context, id int64, state string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE agents SET lifecycle = ? WHERE id = ?`, state, id)
	return affectedOne(res, err)
}

// SetAgentInfo records what the agent reports about itself on connect.
func (s *Store) SetAgentInfo(ctx context.Context, id int64, version, hostKey string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE agents SET version = ?, ssh_host_key = ?, last_seen_at = ?,
		first_connected_at = CASE WHEN first_connected_at = 0 THEN ? ELSE first_connected_at END WHERE id = ?`,
		version, hostKey, toMillis(at), toMillis(at), id)
	return affectedOne(res, err)
}

// SetAgentStats records the agent's latest counters and marks it seen.
func (s *Store) SetAgentStats(ctx context.Context, id, connections, rx, tx int64, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE agents SET connections = ?, rx_bytes = ?, tx_bytes = ?, last_seen_at = ? WHERE id = ?`,
		connections, rx, tx, toMillis(at), id)
	return affectedOne(res, err)
}

// AgentLog is one line of agent output (startup script).
type AgentLog struct {
	ID        int64
	AgentID   int64
	CreatedAt time.Time
	Stream    string
	Output    string
}

// AppendAgentLogs stores log lines in order.
func (s *Store) AppendAgentLogs(ctx context.Context, agentID int64, logs []AgentLog) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, l := range logs {
			at := l.CreatedAt
			if at.IsZero() {
				at = time.Now()
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO agent_logs (agent_id, created_at, stream, output) VALUES (?, ?, ?, ?)`,
				agentID, toMillis(at), orDefault(l.Stream, "stdout"), l.Output); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListAgentLogs returns up to limit lines with ID > afterID.
func (s *Store) ListAgentLogs(ctx context.Context, agentID, afterID int64, limit int) ([]AgentLog, error) {
	return queryAll(ctx, s.db, scanAgentLog, `SELECT id, agent_id, created_at, stream, output FROM agent_logs
		WHERE agent_id = ? AND id > ? ORDER BY id LIMIT ?`, agentID, afterID, limit)
}

func scanAgentLog(row rowScanner) (AgentLog, error) {
	var l AgentLog
	var c int64
	err := row.Scan(&l.ID, &l.AgentID, &c, &l.Stream, &l.Output)
	l.CreatedAt = fromMillis(c)
	return l, err
}

// NodesOfAgent returns the tailnet nodes of an agent.
func (s *Store) NodesOfAgent(ctx context.Context, agentID int64) ([]Node, error) {
	return s.queryNodes(ctx, `SELECT `+nodeCols+` FROM nodes WHERE agent_id = ? ORDER BY id`, agentID)
}
