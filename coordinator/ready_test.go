package coordinator_test

import (
	"strings"
	"testing"

	"github.com/devmesh/devmesh/coordinator/coordtest"
)

// TestReadyz: /readyz answers 200 while the database answers, and 503
// with the reason once it is gone, while /healthz (the process serves
// HTTP) stays 200.
func TestReadyz(t *testing.T) {
	c := coordtest.Start(t, coordtest.WithoutProvisioning())
	if code, body, err := tryGet(c.URL() + "/readyz"); err != nil || code != 200 || strings.TrimSpace(body) != "ready" {
		t.Fatalf("readyz on a healthy server: %d %q %v", code, body, err)
	}
	if err := c.Store().Close(); err != nil {
		t.Fatal(err)
	}
	code, body, err := tryGet(c.URL() + "/readyz")
	if err != nil || code != 503 || !strings.Contains(body, "database unreachable") {
		t.Fatalf("readyz with the database closed: %d %q %v, want 503 naming the database", code, body, err)
	}
	if code, _, err := tryGet(c.URL() + "/healthz"); err != nil || code != 200 {
		t.Fatalf("healthz with the database closed: %d %v, want 200", code, err)
	}
}
