package coordinator_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/devmesh/devmesh/coordinator"
	"github.com/devmesh/devmesh/internal/certpin"
)

// TestDashboardMounted: the coordinator serves the dashboard at / (a
// logged-out browser goes to the login page, whose stylesheet is
// served), and with an https access URL its plain-HTTP side redirects
// dashboard pages to HTTPS instead of taking passwords in the clear.
func TestDashboardMounted(t *testing.T) {
	s, err := coordinator.New(coordinator.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", TLSSelfSigned: true, DisableProvisioning: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	noFollow := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: certpin.Config(s.Fingerprint())}, CheckRedirect: noFollow}
	resp, err := hc.Get(s.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("GET / logged out: %d %q, want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = hc.Get(s.URL() + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("GET /login: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	plain := &http.Client{CheckRedirect: noFollow}
	for _, path := range []string{"/login", "/@alice/ws", "/static/app.css"} {
		resp, err = plain.Get("http://" + s.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusPermanentRedirect || loc != s.URL()+path {
			t.Errorf("plain HTTP %s: %d to %q, want 308 to %s", path, resp.StatusCode, loc, s.URL()+path)
		}
	}
	if code, body, err := tryGet("http://" + s.Addr().String() + "/healthz"); err != nil || code != 200 || !strings.Contains(body, "ok") {
		t.Errorf("plain HTTP healthz: %d %v", code, err)
	}
}
