package coordinator_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/devmesh/devmesh/coordinator"
	"github.com/devmesh/devmesh/provision/tfprovider"
)

// TestServesReleaseDirectory: binaries of other platforms come from
// BinariesDir, each with its SHA-256 (header, NAME.sha256, SHA256SUMS);
// names outside the release naming are not served.
func TestServesReleaseDirectory(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"devmesh-darwin-arm64":        "mac binary",
		"devmesh-windows-amd64.exe":   "windows binary",
		"notes.txt":                   "not a binary",
		"devmesh-linux-arm64.partial": "half written",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := newCoordinator(t, coordinator.Config{DisableProvisioning: true, BinariesDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

	resp, err := http.Get(s.URL() + "/bin/devmesh-windows-amd64.exe")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(coordinator.SHA256Header) != sum("windows binary") {
		t.Errorf("windows binary: %d, sum header %q", resp.StatusCode, resp.Header.Get(coordinator.SHA256Header))
	}
	if code, body := get(t, s.URL()+"/bin/devmesh-darwin-arm64"); code != http.StatusOK || body != "mac binary" {
		t.Errorf("darwin binary: %d %q", code, body)
	}
	if code, body := get(t, s.URL()+"/bin/devmesh-darwin-arm64.sha256"); code != http.StatusOK || body != sum("mac binary")+"  devmesh-darwin-arm64\n" {
		t.Errorf("darwin sum: %d %q", code, body)
	}
	want := sum("mac binary") + "  devmesh-darwin-arm64\n" + sum("windows binary") + "  devmesh-windows-amd64.exe\n"
	if code, body := get(t, s.URL()+"/bin/SHA256SUMS"); code != http.StatusOK || body != want {
		t.Errorf("SHA256SUMS: %d %q, want %q", code, body, want)
	}
	for _, name := range []string{"notes.txt", "devmesh-linux-arm64.partial", "devmesh-linux-arm64", "..%2Fdata%2Fdevmesh.db"} {
		code, body := get(t, s.URL()+"/bin/"+name)
		if code != http.StatusNotFound {
			t.Errorf("%s: %d %q, want 404", name, code, body)
		}
	}
	if _, body := get(t, s.URL()+"/bin/devmesh-linux-arm64"); !strings.Contains(body, "serves only devmesh-darwin-arm64, devmesh-windows-amd64.exe") {
		t.Errorf("missing platform message: %q", body)
	}
	// A changed file gets a new sum.
	if err := os.WriteFile(filepath.Join(dir, "devmesh-darwin-arm64"), []byte("mac binary v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, s.URL()+"/bin/devmesh-darwin-arm64.sha256"); !strings.HasPrefix(body, sum("mac binary v2")) {
		t.Errorf("sum after change: %q", body)
	}
}

// TestInitScriptAgainstCoordinator runs devmesh_agent's POSIX init script
// for real against a coordinator serving a release directory: it picks
// this machine's platform, downloads the binary, verifies its SHA-256 and
// starts it.
func TestInitScriptAgainstCoordinator(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the POSIX init script needs sh")
	}
	tools := t.TempDir()
	for _, tool := range []string{"sh", "mkdir", "chmod", "mv", "rm", "sha256sum", "curl", "uname"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s not installed", tool)
		}
		if err := os.Symlink(p, filepath.Join(tools, tool)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	fake := "#!/bin/sh\nprintf '%s\\n' \"$*\" \"$DEVMESH_URL\" > \"$OUT\"\n"
	name := coordinator.BinaryName(runtime.GOOS, runtime.GOARCH)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := newCoordinator(t, coordinator.Config{DisableProvisioning: true, BinariesDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	// The template declares another platform; the script knows better.
	cmd := exec.Command("sh", "-c", tfprovider.InitScript(s.URL(), "freebsd", "386"))
	cmd.Env = []string{"PATH=" + tools, "HOME=" + t.TempDir(), "OUT=" + out, "DEVMESH_AGENT_TOKEN=tok"}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("init script: %v: %s", err, b)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "agent\n"+s.URL()+"\n" {
		t.Errorf("the downloaded binary ran with %q (%v)", b, err)
	}
}
