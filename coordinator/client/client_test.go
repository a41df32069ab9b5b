package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://dm.example":          "https://dm.example",
		"https://dm.example/":         "https://dm.example",
		"http://127.0.0.1:8080":       "http://127.0.0.1:8080",
		" https://dm.example/prefix/": "https://dm.example/prefix",
	} {
		u, err := ParseURL(in)
		if err != nil || u.String() != want {
			t.Errorf("ParseURL(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
	for _, in := range []string{"", "dm.example", "ftp://dm.example", "https://", "https://dm.example/?x=1", "https://u:p@dm.example"} {
		if _, err := ParseURL(in); err == nil {
			t.Errorf("ParseURL(%q) accepted", in)
		}
	}
}

// TestForeignResponses covers what sits between the client and the API:
// proxies answering HTML, a path prefix, rate-limit headers.
func TestForeignResponses(t *testing.T) {
	var gotPath, gotAuth string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotAuth = r.URL.Path, r.Header.Get("Authorization")
		switch r.URL.Path {
		case "/prefix/api/v1/users/me":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html>bad gateway</html>"))
		case "/prefix/api/v1/login":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"message":"slow down","code":"rate_limited"}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer hs.Close()
	c, err := New(hs.URL+"/prefix/", "tok")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Me(context.Background())
	e, ok := err.(*Error)
	if !ok || e.Status != http.StatusBadGateway || e.Code != "" || !strings.Contains(e.Message, "502") {
		t.Fatalf("HTML 502: %#v", err)
	}
	if gotPath != "/prefix/api/v1/users/me" || gotAuth != "Bearer tok" {
		t.Fatalf("request went to %q with %q", gotPath, gotAuth)
	}
	_, err = c.Login(context.Background(), LoginRequest{Username: "a", Password: "b"})
	if e, ok := err.(*Error); !ok || e.Code != CodeRateLimited || e.RetryAfter != 7*time.Second || e.Error() != "slow down" {
		t.Fatalf("429: %#v", err)
	}
	if ErrorCode(err) != CodeRateLimited || ErrorCode(context.Canceled) != "" {
		t.Fatal("ErrorCode")
	}
}

// TestNoServerImports keeps the client (used by agents and the CLI) free
// of the coordinator's server packages.
func TestNoServerImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/devmesh/devmesh/coordinator/") && pkg != "github.com/devmesh/devmesh/coordinator/client" {
			t.Errorf("client depends on %s", pkg)
		}
		if strings.HasPrefix(pkg, "tailscale.com/") || strings.HasPrefix(pkg, "modernc.org/") {
			t.Errorf("client depends on %s", pkg)
		}
	}
}
