package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Reasons an account change is refused.
var (
	// ErrLastAdmin: the change would leave no enabled admin.
	ErrLastAdmin = errors.New("it is the last enabled admin")
	// ErrUserHasWorkspaces: a user who owns workspaces cannot be deleted.
	ErrUserHasWorkspaces = errors.New("the user owns workspaces")
	// ErrUserHasTemplates: a user who pushed templates or template
	// versions cannot be deleted (they keep their author).
	ErrUserHasTemplates = errors.New("the user pushed templates")
	// ErrUserDisabled: the account is disabled.
	ErrUserDisabled = errors.New("the account is disabled")
)

// otherEnabledAdmins counts the enabled admins other than id.
func otherEnabledAdmins(ctx context.Context, tx *sql.Tx, id int64) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE role = ? AND disabled_at = 0 AND id <> ?`, RoleAdmin, id).Scan(&n)
	return n, err
}

// SetUserDisabled disables (disabled true) or enables the user and
// returns it as it is now. Disabling the last enabled admin fails with
// ErrLastAdmin; disabling a disabled user or enabling an enabled one
// changes nothing.
func (s *Store) SetUserDisabled(ctx context.Context, id int64, disabled bool) (User, error) {
	var u User
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
		if err != nil || u.Disabled() == disabled {
			return err
		}
		at := int64(0)
		if disabled {
			if u.IsAdmin() {
				n, err := otherEnabledAdmins(ctx, tx, id)
				if err != nil {
					return err
				}
				if n == 0 {
					return ErrLastAdmin
				}
			}
			at = nowMillis()
		}
		u, err = scanUser(tx.QueryRowContext(ctx, `UPDATE users SET disabled_at = ? WHERE id = ? RETURNING `+userCols, at, id))
		return err
	})
	return u, err
}

// DeleteUser deletes the user with their tokens, auth keys and nodes
// (the caller removes the nodes from the live tailnet). It fails like
// CheckDeleteUser.
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := checkDeleteUser(ctx, tx, id); err != nil {
			return err
		}
		// Builds of other users' workspaces this user started keep their
		// history without the name.
		if _, err := tx.ExecContext(ctx, `UPDATE builds SET initiator_id = NULL WHERE initiator_id = ?`, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
		return affectedOne(res, err)
	})
}

// CheckDeleteUser reports why DeleteUser would refuse the user now:
// ErrNotFound, ErrUserHasWorkspaces or ErrUserHasTemplates when other
// rows still name the user, ErrLastAdmin for the last enabled admin.
func (s *Store) CheckDeleteUser(ctx context.Context, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return checkDeleteUser(ctx, tx, id) })
}

func checkDeleteUser(ctx context.Context, tx *sql.Tx, id int64) error {
	u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	if err != nil {
		return err
	}
	var ws, tmpl int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM workspaces WHERE owner_id = ?`, id).Scan(&ws); err != nil {
		return err
	}
	if ws > 0 {
		return fmt.Errorf("%w (%d)", ErrUserHasWorkspaces, ws)
	}
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM templates WHERE created_by = ?) +
		(SELECT COUNT(*) FROM template_versions WHERE created_by = ?)`, id, id).Scan(&tmpl); err != nil {
		return err
	}
	if tmpl > 0 {
		return ErrUserHasTemplates
	}
	if u.IsAdmin() && !u.Disabled() {
		n, err := otherEnabledAdmins(ctx, tx, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrLastAdmin
		}
	}
	return nil
}

// DeleteUserSessions deletes the user's login sessions (not their API
// tokens) and returns how many there were.
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM api_tokens WHERE user_id = ? AND kind = ?`, userID, TokenSession)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// rowQuerier is a *sql.DB or a *sql.Tx.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// userDisabled reports whether the user with that ID is disabled (a
// missing user counts as disabled).
func userDisabled(ctx context.Context, q rowQuerier, id int64) (bool, error) {
	var at int64
	err := q.QueryRowContext(ctx, `SELECT disabled_at FROM users WHERE id = ?`, id).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	}
	return at != 0, err
}

// Quota bounds what one user may own. Zero fields are unlimited.
type Quota struct {
	// MaxWorkspaces bounds the user's workspaces of every kind.
	MaxWorkspaces int
	// MaxExternalAgents bounds the agents of the user's external
	// (bring-your-own-machine) workspaces; each has one agent.
	MaxExternalAgents int
}

// QuotaError is CreateWorkspaceWithin's refusal: the owner has Limit of
// What already.
type QuotaError struct {
	What  string // "workspaces" or "external agents"
	Limit int
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("quota reached: at most %d %s per user", e.Limit, e.What)
}

// CreateWorkspaceWithin is CreateWorkspace within the owner's quota q;
// over it, it fails with a *QuotaError. An external workspace (TemplateID
// 0) counts against MaxExternalAgents too: the caller adds its one agent.
// The quota is checked before the insert and again after it (undoing the
// insert when concurrent creates overshot), so it is never exceeded.
func (s *Store) CreateWorkspaceWithin(ctx context.Context, w Workspace, q Quota) (Workspace, error) {
	external := w.TemplateID == 0
	if err := s.checkQuota(ctx, w.OwnerID, external, q, 1); err != nil {
		return Workspace{}, err
	}
	out, err := s.CreateWorkspace(ctx, w)
	if err != nil {
		return out, err
	}
	if err := s.checkQuota(ctx, w.OwnerID, external, q, 0); err != nil {
		if derr := s.DeleteWorkspace(context.WithoutCancel(ctx), out.ID); derr != nil {
			return Workspace{}, errors.Join(err, fmt.Errorf("undo workspace over quota: %w", derr))
		}
		return Workspace{}, err
	}
	return out, nil
}

// checkQuota fails with a *QuotaError when the owner's workspaces plus
// adding exceed q.
func (s *Store) checkQuota(ctx context.Context, ownerID int64, external bool, q Quota, adding int) error {
	var all, ext int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN template_id IS NULL THEN 1 ELSE 0 END), 0)
		FROM workspaces WHERE owner_id = ?`, ownerID).Scan(&all, &ext); err != nil {
		return fmt.Errorf("count workspaces: %w", err)
	}
	if q.MaxWorkspaces > 0 && all+adding > q.MaxWorkspaces {
		return &QuotaError{What: "workspaces", Limit: q.MaxWorkspaces}
	}
	if external && q.MaxExternalAgents > 0 && ext+adding > q.MaxExternalAgents {
		return &QuotaError{What: "external agents", Limit: q.MaxExternalAgents}
	}
	return nil
}
