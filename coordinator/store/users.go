package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Roles a user can have.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// User is an account on the coordinator.
type User struct {
	ID           int64
	Username     string
	PasswordHash string
	Role         string
	CreatedAt    time.Time
	// DisabledAt is when an admin disabled the account (zero: enabled).
	DisabledAt time.Time
}

// IsAdmin reports whether u has the admin role.
func (u User) IsAdmin() bool { return u.Role == RoleAdmin }

// Disabled reports whether the account is disabled.
func (u User) Disabled() bool { return !u.DisabledAt.IsZero() }

const userCols = `id, username, password_hash, role, created_at, disabled_at`

func scanUser(row rowScanner) (User, error) {
	var u User
	var created, disabled int64
	err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.Role, &created, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	u.CreatedAt, u.DisabledAt = fromMillis(created), fromMillis(disabled)
	return u, err
}

// CreateUser inserts a user. ErrConflict if the username is taken.
func (s *Store) CreateUser(ctx context.Context, username, passwordHash, role string) (User, error) {
	now := nowMillis()
	row := s.db.QueryRowContext(ctx, `INSERT INTO users (username, password_hash, role, created_at)
		VALUES (?, ?, ?, ?) RETURNING `+userCols, username, passwordHash, role, now)
	u, err := scanUser(row)
	if isUniqueViolation(err) {
		return User{}, fmt.Errorf("user %q: %w", username, ErrConflict)
	}
	return u, err
}

// CreateFirstUser inserts an admin only if there are no users yet, in one
// transaction. It returns ErrConflict when the server is already set up.
func (s *Store) CreateFirstUser(ctx context.Context, username, passwordHash string) (User, error) {
	var u User
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrConflict
		}
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, `INSERT INTO users (username, password_hash, role, created_at)
			VALUES (?, ?, ?, ?) RETURNING `+userCols, username, passwordHash, RoleAdmin, nowMillis()))
		return err
	})
	return u, err
}

// CountUsers returns the number of users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n)
	return n, err
}

// UserByName returns the user with that username.
func (s *Store) UserByName(ctx context.Context, username string) (User, error) {
	return scanUser(s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE username = ?`, username))
}

// UserByID returns the user with that ID.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	return scanUser(s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
}

// ListUsers returns all users ordered by ID.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	return queryAll(ctx, s.db, scanUser, `SELECT `+userCols+` FROM users ORDER BY id`)
}
