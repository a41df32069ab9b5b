package cliconfig

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSaveLoadRemove(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "devmesh")
	if _, err := Load(dir); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("Load before Save = %v, want ErrNotLoggedIn", err)
	}
	want := Credentials{URL: "https://dm.example", Token: "dms_secret", Username: "alice"}
	if err := Save(dir, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, want 0600", fi.Mode().Perm())
	}
	di, _ := os.Stat(dir)
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, want 0700", di.Mode().Perm())
	}
	got, err := Load(dir)
	if err != nil || got != want {
		t.Fatalf("Load = %+v, %v; want %+v", got, err, want)
	}
	// Overwriting leaves no temporary files behind.
	if err := Save(dir, Credentials{URL: "https://other", Token: "t2"}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("dir holds %d entries, want 1", len(ents))
	}
	if err := Remove(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("Load after Remove = %v", err)
	}
	if err := Remove(dir); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

func TestLoadRefusesReadableFile(t *testing.T) {
	dir := t.TempDir()
	if err := Save(dir, Credentials{URL: "https://dm.example", Token: "x"}); err != nil {
		t.Fatal(err)
	}
	os.Chmod(Path(dir), 0o644)
	if _, err := Load(dir); err == nil {
		t.Fatal("Load accepted a world-readable credentials file")
	}
}

func TestDirAndResolve(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvDir, dir)
	t.Setenv(EnvToken, "")
	t.Setenv(EnvURL, "https://elsewhere")
	if d, err := Dir(); err != nil || d != dir {
		t.Fatalf("Dir = %q, %v", d, err)
	}
	Save(dir, Credentials{URL: "https://dm.example", Token: "stored"})
	// DEVMESH_URL alone does not redirect the stored token.
	if c, err := Resolve(dir); err != nil || c.URL != "https://dm.example" || c.Token != "stored" {
		t.Fatalf("Resolve = %+v, %v", c, err)
	}
	t.Setenv(EnvToken, "from-env")
	if c, err := Resolve(dir); err != nil || c.URL != "https://elsewhere" || c.Token != "from-env" {
		t.Fatalf("Resolve with env token = %+v, %v", c, err)
	}
	t.Setenv(EnvURL, "")
	Remove(dir)
	if _, err := Resolve(dir); err == nil {
		t.Fatal("Resolve with a token and no URL anywhere succeeded")
	}
}
