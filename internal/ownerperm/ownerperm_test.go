//go:build !windows

package ownerperm

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRestrict(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := Dir(dir); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "secret")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Dir(shared); err != nil { // an existing directory is left alone
		t.Fatal(err)
	}
	if fi, _ := os.Stat(shared); fi.Mode().Perm() != 0o755 {
		t.Errorf("existing directory changed to %v", fi.Mode().Perm())
	}
	if err := File(f); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, f: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
	}
	if err := File(filepath.Join(dir, "missing")); err == nil {
		t.Error("File on a missing path: no error")
	}
}
