package coordinator_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devmesh/devmesh/coordinator"
	"github.com/devmesh/devmesh/internal/certpin"
)

// TestSelfSignedCertCoversAccessURL: the persisted certificate keeps its
// fingerprint across restarts, and is made anew when the access URL's
// host is not among its names (it was made once, for the first host, and
// kept forever); the API answers over HTTPS with the pin and refuses
// plain HTTP.
func TestSelfSignedCertCoversAccessURL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	start := func(accessURL string) *coordinator.Server {
		t.Helper()
		s, err := coordinator.New(coordinator.Config{DataDir: dir, Listen: "127.0.0.1:0", AccessURL: accessURL, TLSSelfSigned: true, DisableProvisioning: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := start("")
	first := s.Fingerprint()
	addr := s.Addr().String()
	if !strings.HasPrefix(s.URL(), "https://") || len(first) != 64 {
		t.Fatalf("URL %s fingerprint %q", s.URL(), first)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: certpin.Config(first)}}
	resp, err := hc.Get(s.URL() + "/api/v1/buildinfo")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("pinned https: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get("http://" + addr + "/api/v1/buildinfo")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "https_required") {
		t.Fatalf("plain HTTP API: %d %s", resp.StatusCode, body)
	}
	if code, _, err := tryGet("http://" + addr + "/healthz"); err != nil || code != 200 {
		t.Fatalf("plain HTTP healthz: %d %v", code, err)
	}
	// The admin-only observability paths carry a token too.
	for _, p := range []string{"/metrics", "/debug/pprof/"} {
		if code, body, err := tryGet("http://" + addr + p); err != nil || code != http.StatusForbidden || !strings.Contains(body, "https_required") {
			t.Fatalf("plain HTTP %s: %d %s %v", p, code, body, err)
		}
	}
	s.Close()

	s = start("")
	if s.Fingerprint() != first {
		t.Fatalf("fingerprint changed across a restart: %s -> %s", first, s.Fingerprint())
	}
	s.Close()

	s = start("https://devmesh.example.test:8443")
	defer s.Close()
	if s.Fingerprint() == first {
		t.Fatal("the certificate was kept although it does not cover the new access URL's host")
	}
	conn, err := tls.Dial("tcp", s.Addr().String(), certpin.Config(s.Fingerprint()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.ConnectionState().PeerCertificates[0].VerifyHostname("devmesh.example.test"); err != nil {
		t.Fatalf("new certificate: %v", err)
	}
}
