package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Workspace is a user's workspace. TemplateID is 0 for an external
// (bring-your-own-machine) workspace.
type Workspace struct {
	ID                int64
	UUID              string
	OwnerID           int64
	Name              string
	TemplateID        int64
	TemplateVersionID int64
	Variables         string // JSON object
	CreatedAt         time.Time
}

// IsExternal reports whether the workspace has no template.
func (w Workspace) IsExternal() bool { return w.TemplateID == 0 }

const workspaceCols = `id, uuid, owner_id, name, COALESCE(template_id, 0), COALESCE(template_version_id, 0), variables, created_at`

func scanWorkspace(row rowScanner) (Workspace, error) {
	var w Workspace
	var c int64
	err := row.Scan(&w.ID, &w.UUID, &w.OwnerID, &w.Name, &w.TemplateID, &w.TemplateVersionID, &w.Variables, &c)
	if errors.Is(err, sql.ErrNoRows) {
		return Workspace{}, ErrNotFound
	}
	w.CreatedAt = fromMillis(c)
	return w, err
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// CreateWorkspace inserts w. ErrConflict if the owner has one by that name.
func (s *Store) CreateWorkspace(ctx context.Context, w Workspace) (Workspace, error) {
	out, err := scanWorkspace(s.db.QueryRowContext(ctx, `INSERT INTO workspaces
		(uuid, owner_id, name, template_id, template_version_id, variables, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING `+workspaceCols,
		w.UUID, w.OwnerID, w.Name, nullID(w.TemplateID), nullID(w.TemplateVersionID), orDefault(w.Variables, "{}"), nowMillis()))
	if isUniqueViolation(err) {
		return Workspace{}, fmt.Errorf("workspace %q: %w", w.Name, ErrConflict)
	}
	return out, err
}

// WorkspaceByName returns the owner's workspace called name.
func (s *Store) WorkspaceByName(ctx context.Context, ownerID int64, name string) (Workspace, error) {
	return scanWorkspace(s.db.QueryRowContext(ctx, `SELECT `+workspaceCols+` FROM workspaces WHERE owner_id = ? AND name = ?`, ownerID, name))
}

// WorkspaceByID returns the workspace with that ID.
func (s *Store) WorkspaceByID(ctx context.Context, id int64) (Workspace, error) {
	return scanWorkspace(s.db.QueryRowContext(ctx, `SELECT `+workspaceCols+` FROM workspaces WHERE id = ?`, id))
}

// ListWorkspaces returns the owner's workspaces (every user's if ownerID
// is 0), ordered by ID.
func (s *Store) ListWorkspaces(ctx context.Context, ownerID int64) ([]Workspace, error) {
	q := `SELECT ` + workspaceCols + ` FROM workspaces`
	var args []any
	if ownerID != 0 {
		q += ` WHERE owner_id = ?`
		args = append(args, ownerID)
	}
	return queryAll(ctx, s.db, scanWorkspace, q+` ORDER BY id`, args...)
}

// DeleteWorkspace removes a workspace with its agents, builds and logs.
// The caller removes the agents' tailnet nodes.
func (s *Store) DeleteWorkspace(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM workspaces WHERE id = ?`, id)
	return affectedOne(res, err)
}

// WorkspaceState returns the workspace's last terraform state (nil if none).
func (s *Store) WorkspaceState(ctx context.Context, id int64) ([]byte, error) {
	var st []byte
	err := s.db.QueryRowContext(ctx, `SELECT tf_state FROM workspaces WHERE id = ?`, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return st, err
}

// SetWorkspaceState stores the workspace's terraform state durably.
func (s *Store) SetWorkspaceState(ctx context.Context, id int64, state []byte) error {
	res, err := s.db.ExecContext(ctx, `UPDATE workspaces SET tf_state = ? WHERE id = ?`, state, id)
	return affectedOne(res, err)
}
