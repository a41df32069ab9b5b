package store

import (
	"context"
	"strings"
	"testing"
)

// TestReadyNeedsEveryMigration: Ready fails on a database whose schema is
// behind the binary's migrations.
func TestReadyNeedsEveryMigration(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("fresh store not ready: %v", err)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctx); err == nil || !strings.Contains(err.Error(), "schema at migration") {
		t.Fatalf("Ready with the last migration missing: %v, want a schema error", err)
	}
}
