package tfprovider_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/devmesh/devmesh/provision/tfprovider"
	"github.com/devmesh/devmesh/provision/tfprovider/tfprovidertest"
)

func TestInstallMirrorLayout(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(t.TempDir(), "dev mesh's") // quoting matters
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := tfprovider.InstallMirror(dir, bin, "1.2.3"); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "plugins", "registry.devmesh.local", "devmesh", "devmesh", "1.2.3",
		runtime.GOOS+"_"+runtime.GOARCH, "terraform-provider-devmesh_v1.2.3")
	info, err := os.Stat(exe)
	if err != nil || info.Mode().Perm() != 0o755 {
		t.Fatalf("plugin: %v, %v", info, err)
	}
	script, _ := os.ReadFile(exe)
	want := "#!/bin/sh\nexec '" + strings.ReplaceAll(bin, "'", `'\''`) + "' terraform-provider \"$@\"\n"
	if string(script) != want {
		t.Errorf("plugin script:\n%s\nwant:\n%s", script, want)
	}
	cfg, err := os.ReadFile(tfprovider.CLIConfigFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`path    = "` + filepath.Join(dir, "plugins") + `"`, `include = ["registry.devmesh.local/devmesh/devmesh"]`, "disable_checkpoint = true"} {
		if !strings.Contains(string(cfg), w) {
			t.Errorf("CLI config lacks %q:\n%s", w, cfg)
		}
	}
	if strings.Contains(string(cfg), "direct") {
		t.Errorf("CLI config allows downloads:\n%s", cfg)
	}
}

func TestMirrorOptions(t *testing.T) {
	dir := t.TempDir()
	m := tfprovider.Mirror{Dir: dir, DevmeshBinary: tfprovidertest.Binary(t), ExtraMirrors: []string{"/opt/providers"}, AllowDownload: true}
	if err := m.Install(); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(tfprovider.CLIConfigFile(dir))
	for _, w := range []string{
		"filesystem_mirror {\n    path    = \"/opt/providers\"\n    exclude = [\"registry.devmesh.local/devmesh/devmesh\"]",
		"direct {\n    exclude = [\"registry.devmesh.local/devmesh/devmesh\"]",
		"/" + tfprovider.Version + "/",
	} {
		if !strings.Contains(string(cfg)+mustGlob(t, dir), w) {
			t.Errorf("mirror lacks %q:\n%s", w, cfg)
		}
	}
}

func mustGlob(t *testing.T, dir string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "plugins", "*", "*", "*", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(m, "\n")
}

func TestInstallMirrorErrors(t *testing.T) {
	bin := tfprovidertest.Binary(t)
	tests := []struct {
		name, dir, bin, version string
	}{
		{"relative binary", t.TempDir(), "devmesh", "1.0.0"},
		{"relative dir", "mirror", bin, "1.0.0"},
		{"missing binary", t.TempDir(), filepath.Join(t.TempDir(), "nope"), "1.0.0"},
		{"not semver", t.TempDir(), bin, "dev"},
		{"prerelease", t.TempDir(), bin, "1.0.0-rc1"},
	}
	for _, tt := range tests {
		if err := tfprovider.InstallMirror(tt.dir, tt.bin, tt.version); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

// TestLockFileEntry checks our hash of the mirror's package against the
// one terraform computes itself when it has no lock file.
func TestLockFileEntry(t *testing.T) {
	tf := newTerraform(t, "", nil) // init writes .terraform.lock.hcl
	lock, err := os.ReadFile(filepath.Join(tf.WorkingDir(), ".terraform.lock.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	// newTerraform installed its mirror into a temp dir we do not know;
	// install the same binary again and compare.
	m := tfprovider.Mirror{Dir: t.TempDir(), DevmeshBinary: tfprovidertest.Binary(t)}
	if err := m.Install(); err != nil {
		t.Fatal(err)
	}
	entry, err := m.LockFileEntry()
	if err != nil {
		t.Fatal(err)
	}
	h1 := func(s string) string {
		i := strings.Index(s, `"h1:`)
		if i < 0 {
			t.Fatalf("no h1 hash in %q", s)
		}
		return s[i : i+strings.Index(s[i+1:], `"`)+2]
	}
	if h1(entry) != h1(string(lock)) {
		t.Errorf("our entry:\n%s\nterraform's lock file:\n%s", entry, lock)
	}
}
