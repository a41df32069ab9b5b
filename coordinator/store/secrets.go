package store

import (
	"context"
	"database/sql"
	"errors"
)

// GetOrCreateSecret returns the server secret called name, creating it
// with gen() on first use. Used for the Noise machine key and the DERP
// node key, which must survive restarts.
func (s *Store) GetOrCreateSecret(ctx context.Context, name string, gen func() (string, error)) (string, error) {
	var value string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT value FROM server_secrets WHERE name = ?`, name).Scan(&value)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if value, err = gen(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO server_secrets (name, value) VALUES (?, ?)`, name, value)
		return err
	})
	return value, err
}

// ReplaceSecrets sets the named server secrets to new values, all in one
// transaction (the self-signed certificate and its key, when the
// certificate no longer covers the access URL's host).
func (s *Store) ReplaceSecrets(ctx context.Context, values map[string]string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for name, value := range values {
			if _, err := tx.ExecContext(ctx, `DELETE FROM server_secrets WHERE name = ?`, name); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO server_secrets (name, value) VALUES (?, ?)`, name, value); err != nil {
				return err
			}
		}
		return nil
	})
}
