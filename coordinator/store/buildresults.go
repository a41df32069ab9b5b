package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// MetadataItem is one devmesh_metadata item of a workspace, as its latest
// successful build left it. Resource names the resource described (its
// terraform address when known).
type MetadataItem struct {
	ID          int64
	WorkspaceID int64
	Resource    string
	Key         string
	Value       string
	Sensitive   bool
}

// BuildOutcome is how a build ends and what that changes about its
// workspace. FinishBuild applies all of it in one transaction.
type BuildOutcome struct {
	// From is the status the build must still have; To and Reason replace
	// it.
	From, To, Reason string
	// SetAgents replaces the workspace's agents with Agents. An existing
	// agent with the same UUID and token hash as a new one is kept (and
	// updated), so that a connected agent stays connected; every other
	// existing agent is deleted, which stops its token working, and its
	// unused tailnet auth keys are revoked.
	SetAgents bool
	Agents    []Agent
	// SetMetadata replaces the workspace's metadata with Metadata.
	SetMetadata bool
	Metadata    []MetadataItem
}

// FinishBuild applies o to a build of workspaceID. It returns the agents
// it deleted, whose tailnet nodes the caller removes. ErrConflict if the
// build's status is no longer o.From.
func (s *Store) FinishBuild(ctx context.Context, buildID, workspaceID int64, o BuildOutcome) (removed []Agent, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		b := Build{Status: o.To}
		var finished int64
		if b.Finished() {
			finished = nowMillis()
		}
		res, err := tx.ExecContext(ctx, `UPDATE builds SET status = ?, reason = ?, finished_at = ? WHERE id = ? AND status = ?`,
			o.To, o.Reason, finished, buildID, o.From)
		if err := affectedOne(res, err); errors.Is(err, ErrNotFound) {
			return fmt.Errorf("build %d is no longer %s: %w", buildID, o.From, ErrConflict)
		} else if err != nil {
			return err
		}
		if o.SetAgents {
			if removed, err = replaceAgents(ctx, tx, workspaceID, buildID, o.Agents); err != nil {
				return fmt.Errorf("replace agents: %w", err)
			}
		}
		if o.SetMetadata {
			if err := replaceMetadata(ctx, tx, workspaceID, o.Metadata); err != nil {
				return fmt.Errorf("replace metadata: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

func replaceAgents(ctx context.Context, tx *sql.Tx, workspaceID, buildID int64, agents []Agent) ([]Agent, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+agentCols+` FROM agents WHERE workspace_id = ?`, workspaceID)
	if err != nil {
		return nil, err
	}
	var existing []Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		existing = append(existing, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	keep := map[string]int64{} // uuid -> ID of an existing agent that stays
	for _, e := range existing {
		for _, a := range agents {
			if a.UUID == e.UUID && a.TokenHash == e.TokenHash {
				keep[e.UUID] = e.ID
			}
		}
	}
	var removed []Agent
	now := nowMillis()
	for _, e := range existing {
		if _, ok := keep[e.UUID]; ok {
			continue
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM agents WHERE id = ?`, e.ID); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE auth_keys SET revoked_at = ? WHERE agent_id = ? AND revoked_at = 0`, now, e.ID); err != nil {
			return nil, err
		}
		removed = append(removed, e)
	}
	for _, a := range agents {
		if id, ok := keep[a.UUID]; ok {
			_, err = tx.ExecContext(ctx, `UPDATE agents SET name = ?, build_id = ?, os = ?, arch = ?, dir = ?, env = ?,
				startup_script = ? WHERE id = ?`, a.Name, nullID(buildID), a.OS, a.Arch, a.Dir, orDefault(a.Env, "{}"), a.StartupScript, id)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO agents
				(uuid, workspace_id, name, token_hash, build_id, os, arch, dir, env, startup_script, lifecycle, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				a.UUID, workspaceID, a.Name, a.TokenHash, nullID(buildID), a.OS, a.Arch, a.Dir, orDefault(a.Env, "{}"),
				a.StartupScript, LifecycleCreated, now)
		}
		if isUniqueViolation(err) {
			return nil, fmt.Errorf("agent %q: %w", a.Name, ErrConflict)
		}
		if err != nil {
			return nil, err
		}
	}
	return removed, nil
}

func replaceMetadata(ctx context.Context, tx *sql.Tx, workspaceID int64, items []MetadataItem) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM workspace_metadata WHERE workspace_id = ?`, workspaceID); err != nil {
		return err
	}
	for _, m := range items {
		if _, err := tx.ExecContext(ctx, `INSERT INTO workspace_metadata (workspace_id, resource, key, value, sensitive)
			VALUES (?, ?, ?, ?, ?)`, workspaceID, m.Resource, m.Key, m.Value, boolInt(m.Sensitive)); err != nil {
			return err
		}
	}
	return nil
}

// ListWorkspaceMetadata returns a workspace's metadata items in the order
// its template declares them.
func (s *Store) ListWorkspaceMetadata(ctx context.Context, workspaceID int64) ([]MetadataItem, error) {
	return queryAll(ctx, s.db, scanMetadata, `SELECT id, workspace_id, resource, key, value, sensitive FROM workspace_metadata
		WHERE workspace_id = ? ORDER BY id`, workspaceID)
}

func scanMetadata(row rowScanner) (MetadataItem, error) {
	var m MetadataItem
	var sens int
	err := row.Scan(&m.ID, &m.WorkspaceID, &m.Resource, &m.Key, &m.Value, &sens)
	m.Sensitive = sens != 0
	return m, err
}
