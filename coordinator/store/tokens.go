package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Token kinds.
const (
	TokenSession = "session"
	TokenAPI     = "api"
)

// Token is a session or API token's metadata. The secret itself is never
// stored; SecretHash is its SHA-256 (hex).
type Token struct {
	ID         int64
	UserID     int64
	Name       string
	Kind       string
	SecretHash string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt time.Time
}

const tokenCols = `id, user_id, name, kind, secret_hash, created_at, expires_at, last_used_at`

func scanToken(row rowScanner) (Token, error) {
	var t Token
	var c, e, l int64
	err := row.Scan(&t.ID, &t.UserID, &t.Name, &t.Kind, &t.SecretHash, &c, &e, &l)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ErrNotFound
	}
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = fromMillis(c), fromMillis(e), fromMillis(l)
	return t, err
}

// CreateToken stores a token. ErrConflict if an API token of that name exists.
func (s *Store) CreateToken(ctx context.Context, t Token) (Token, error) {
	row := s.db.QueryRowContext(ctx, `INSERT INTO api_tokens (user_id, name, kind, secret_hash, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING `+tokenCols,
		t.UserID, t.Name, t.Kind, t.SecretHash, nowMillis(), toMillis(t.ExpiresAt))
	out, err := scanToken(row)
	if isUniqueViolation(err) {
		return Token{}, fmt.Errorf("token %q: %w", t.Name, ErrConflict)
	}
	return out, err
}

// TokenByHash looks a token up by its secret's hash.
func (s *Store) TokenByHash(ctx context.Context, hash string) (Token, error) {
	return scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE secret_hash = ?`, hash))
}

// TouchToken records a use of the token.
func (s *Store) TouchToken(ctx context.Context, id int64, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, toMillis(at), id)
	return err
}

// ListTokens returns a user's API tokens (not sessions), oldest first.
func (s *Store) ListTokens(ctx context.Context, userID int64) ([]Token, error) {
	return queryAll(ctx, s.db, scanToken, `SELECT `+tokenCols+` FROM api_tokens
		WHERE user_id = ? AND kind = ? ORDER BY id`, userID, TokenAPI)
}

// DeleteToken deletes the user's API token named name.
func (s *Store) DeleteToken(ctx context.Context, userID int64, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM api_tokens WHERE user_id = ? AND name = ? AND kind = ?`, userID, name, TokenAPI)
	return affectedOne(res, err)
}

// DeleteTokenByID deletes a token of any kind (logout deletes its session).
func (s *Store) DeleteTokenByID(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM api_tokens WHERE id = ?`, id)
	return affectedOne(res, err)
}

func affectedOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
