package coordinator_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/devmesh/devmesh/coordinator"
	"github.com/devmesh/devmesh/provision"
)

func newCoordinator(t *testing.T, cfg coordinator.Config) (*coordinator.Server, error) {
	t.Helper()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Listen = "127.0.0.1:0"
	s, err := coordinator.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.Start(context.Background()); err != nil {
		return nil, err
	}
	t.Cleanup(func() { s.Close() })
	return s, nil
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestTerraformCheckedAtStart: a missing terraform stops the coordinator
// at startup with a message saying what to do, unless provisioning is off.
func TestTerraformCheckedAtStart(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "terraform")
	_, err := newCoordinator(t, coordinator.Config{TerraformPath: missing})
	if err == nil || !strings.Contains(err.Error(), "terraform not found") || !strings.Contains(err.Error(), "--terraform-path") {
		t.Fatalf("New with a missing terraform: %v", err)
	}
	s, err := newCoordinator(t, coordinator.Config{TerraformPath: missing, DisableProvisioning: true})
	if err != nil {
		t.Fatalf("New without provisioning: %v", err)
	}
	if code, body := get(t, s.URL()+"/bin/devmesh-"+runtime.GOOS+"-"+runtime.GOARCH); code != http.StatusNotFound || !strings.Contains(body, "provisioning is disabled") {
		t.Errorf("binary without provisioning: %d %q", code, body)
	}
}

// TestServesOwnBinary: the devmesh binary is served for this platform
// only, where devmesh_agent's init script downloads it.
func TestServesOwnBinary(t *testing.T) {
	if _, err := provision.CheckTerraform(context.Background(), ""); err != nil {
		t.Skipf("needs terraform: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "devmesh")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho devmesh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := newCoordinator(t, coordinator.Config{DevmeshBinary: bin})
	if err != nil {
		t.Fatal(err)
	}
	code, body := get(t, s.URL()+"/bin/devmesh-"+runtime.GOOS+"-"+runtime.GOARCH)
	if code != http.StatusOK || body != "#!/bin/sh\necho devmesh\n" {
		t.Errorf("own platform: %d %q", code, body)
	}
	other := "devmesh-plan9-mips"
	if runtime.GOOS == "plan9" {
		other = "devmesh-linux-amd64"
	}
	if code, body := get(t, s.URL()+"/bin/"+other); code != http.StatusNotFound || !strings.Contains(body, "serves only devmesh-"+runtime.GOOS) {
		t.Errorf("other platform: %d %q", code, body)
	}
}
