package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Reasons an auth key is refused at registration.
var (
	ErrAuthKeyUnknown = errors.New("auth key not found")
	ErrAuthKeyExpired = errors.New("auth key expired")
	ErrAuthKeyUsed    = errors.New("auth key already used")
	ErrAuthKeyRevoked = errors.New("auth key revoked")
	// ErrAuthKeyOwnerDisabled is a revoked key in effect: its owner's
	// account is disabled. It wraps ErrAuthKeyRevoked.
	ErrAuthKeyOwnerDisabled = fmt.Errorf("%w: its owner's account is disabled", ErrAuthKeyRevoked)
)

// AuthKey is a tailnet pre-auth key's metadata. The secret is never
// stored; SecretHash is its SHA-256 (hex) and Prefix a short public part
// for display.
type AuthKey struct {
	ID         int64
	UserID     int64
	Prefix     string
	SecretHash string
	Reusable   bool
	Ephemeral  bool
	CreatedAt  time.Time
	ExpiresAt  time.Time
	UsedAt     time.Time
	RevokedAt  time.Time
	AgentID    int64 // 0 for a user's own key
}

const authKeyCols = `id, user_id, prefix, secret_hash, reusable, ephemeral, created_at, expires_at, used_at, revoked_at, COALESCE(agent_id, 0)`

func scanAuthKey(row rowScanner) (AuthKey, error) {
	var k AuthKey
	var reusable, ephemeral int
	var c, e, u, r int64
	err := row.Scan(&k.ID, &k.UserID, &k.Prefix, &k.SecretHash, &reusable, &ephemeral, &c, &e, &u, &r, &k.AgentID)
	if errors.Is(err, sql.ErrNoRows) {
		return AuthKey{}, ErrNotFound
	}
	k.Reusable, k.Ephemeral = reusable != 0, ephemeral != 0
	k.CreatedAt, k.ExpiresAt, k.UsedAt, k.RevokedAt = fromMillis(c), fromMillis(e), fromMillis(u), fromMillis(r)
	return k, err
}

// CreateAuthKey stores a new auth key.
func (s *Store) CreateAuthKey(ctx context.Context, k AuthKey) (AuthKey, error) {
	var agent any
	if k.AgentID != 0 {
		agent = k.AgentID
	}
	return scanAuthKey(s.db.QueryRowContext(ctx, `INSERT INTO auth_keys
		(user_id, prefix, secret_hash, reusable, ephemeral, created_at, expires_at, agent_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+authKeyCols,
		k.UserID, k.Prefix, k.SecretHash, boolInt(k.Reusable), boolInt(k.Ephemeral), nowMillis(), toMillis(k.ExpiresAt), agent))
}

// ListAuthKeys returns the auth keys a user created, oldest first.
func (s *Store) ListAuthKeys(ctx context.Context, userID int64) ([]AuthKey, error) {
	return queryAll(ctx, s.db, scanAuthKey, `SELECT `+authKeyCols+` FROM auth_keys WHERE user_id = ? AND agent_id IS NULL ORDER BY id`, userID)
}

// RevokeAuthKey revokes the user's key with that ID.
func (s *Store) RevokeAuthKey(ctx context.Context, userID, id int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE auth_keys SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at = 0`, nowMillis(), id, userID)
	return affectedOne(res, err)
}

// usableAuthKey returns why k cannot be used now, or nil: checkAuthKey's
// reasons, or that its owner is disabled.
func usableAuthKey(ctx context.Context, q rowQuerier, k AuthKey, now time.Time) error {
	if err := checkAuthKey(k, now); err != nil {
		return err
	}
	disabled, err := userDisabled(ctx, q, k.UserID)
	if err != nil {
		return err
	}
	if disabled {
		return ErrAuthKeyOwnerDisabled
	}
	return nil
}

// checkAuthKey returns why k cannot be used now, or nil.
func checkAuthKey(k AuthKey, now time.Time) error {
	switch {
	case !k.RevokedAt.IsZero():
		return ErrAuthKeyRevoked
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return ErrAuthKeyExpired
	case !k.Reusable && !k.UsedAt.IsZero():
		return ErrAuthKeyUsed
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CheckAuthKey returns the auth key with that secret hash if it can be
// used now, or why not. It consumes nothing.
func (s *Store) CheckAuthKey(ctx context.Context, hash string) (AuthKey, error) {
	k, err := scanAuthKey(s.db.QueryRowContext(ctx, `SELECT `+authKeyCols+` FROM auth_keys WHERE secret_hash = ?`, hash))
	if errors.Is(err, ErrNotFound) {
		return AuthKey{}, ErrAuthKeyUnknown
	}
	if err != nil {
		return AuthKey{}, err
	}
	return k, usableAuthKey(ctx, s.db, k, time.Now())
}

// ConsumeAuthKey validates the key and marks it used, atomically.
func (s *Store) ConsumeAuthKey(ctx context.Context, hash string) (AuthKey, error) {
	var k AuthKey
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		k, err = scanAuthKey(tx.QueryRowContext(ctx, `SELECT `+authKeyCols+` FROM auth_keys WHERE secret_hash = ?`, hash))
		if errors.Is(err, ErrNotFound) {
			return ErrAuthKeyUnknown
		}
		if err != nil {
			return err
		}
		now := time.Now()
		if err := usableAuthKey(ctx, tx, k, now); err != nil {
			return err
		}
		k.UsedAt = now
		_, err = tx.ExecContext(ctx, `UPDATE auth_keys SET used_at = ? WHERE id = ?`, toMillis(now), k.ID)
		return err
	})
	return k, err
}
