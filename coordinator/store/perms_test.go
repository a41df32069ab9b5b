//go:build unix

package store

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestFilesPrivateFromTheStart: the database, its -wal and -shm files are
// 0600 and the directory 0700, in a fresh directory, in an existing 0755
// one, and for files an older version left 0644. The umask is cleared so
// that nothing relies on it: a file SQLite creates with its default mode
// would show as 0644 (as -wal and -shm did, created before the chmod).
func TestFilesPrivateFromTheStart(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir, db string)
	}{
		{"fresh dir", func(t *testing.T, dir, db string) {}},
		{"existing 0755 dir", func(t *testing.T, dir, db string) {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"files left 0644", func(t *testing.T, dir, db string) {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{db, db + "-wal", db + "-shm"} {
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			db := filepath.Join(dir, "devmesh.db")
			tc.setup(t, dir, db)
			s, err := OpenSQLite(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// A write makes sure the WAL and shared-memory files exist.
			if _, err := s.GetOrCreateSecret(context.Background(), "k", func() (string, error) { return "v", nil }); err != nil {
				t.Fatal(err)
			}
			checkMode(t, dir, 0o700)
			for _, p := range []string{db, db + "-wal", db + "-shm"} {
				checkMode(t, p, 0o600)
			}
		})
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %04o, want %04o", filepath.Base(path), got, want)
	}
}
