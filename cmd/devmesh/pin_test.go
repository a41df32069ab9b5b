package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator"
	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/internal/cliconfig"
)

// selfSignedCoordinator starts a coordinator serving its API over HTTPS
// with the self-signed certificate.
func selfSignedCoordinator(t *testing.T) *coordtest.Coordinator {
	t.Helper()
	return coordtest.Start(t, coordtest.WithoutProvisioning(), func(c *coordinator.Config) { c.TLSSelfSigned = true })
}

// TestLoginPinsSelfSignedCertificate: login to a self-signed coordinator
// needs its fingerprint (no terminal to ask on); a wrong one is refused;
// the right one is stored and later commands check it.
func TestLoginPinsSelfSignedCertificate(t *testing.T) {
	dir := cliEnv(t)
	c := selfSignedCoordinator(t)
	if !strings.HasPrefix(c.URL(), "https://") || len(c.Fingerprint()) != 64 {
		t.Fatalf("URL %s, fingerprint %q", c.URL(), c.Fingerprint())
	}

	_, _, err := runCLI(t, cliAdminPW+"\n", "login", c.URL(), "--username", "admin", "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), c.Fingerprint()) || !strings.Contains(err.Error(), "--fingerprint") {
		t.Fatalf("login without a fingerprint: %v", err)
	}
	wrong := strings.Repeat("ab", 32)
	_, _, err = runCLI(t, cliAdminPW+"\n", "login", c.URL(), "--username", "admin", "--password-stdin", "--fingerprint", wrong)
	if err == nil || !strings.Contains(err.Error(), "not the pinned "+wrong) {
		t.Fatalf("login with a wrong fingerprint: %v", err)
	}
	if _, err := cliconfig.Load(dir); err != cliconfig.ErrNotLoggedIn {
		t.Fatalf("a refused login stored credentials: %v", err)
	}

	// Any spelling of the right fingerprint: colons, upper case, prefix.
	typed := "SHA256:" + strings.ToUpper(colons(c.Fingerprint()))
	mustRun(t, cliAdminPW+"\n", "login", c.URL(), "--username", "admin", "--password-stdin", "--fingerprint", typed)
	creds, err := cliconfig.Load(dir)
	if err != nil || creds.Fingerprint != c.Fingerprint() {
		t.Fatalf("stored credentials %+v, %v; want fingerprint %s", creds, err, c.Fingerprint())
	}
	if out, _ := mustRun(t, "", "whoami"); !strings.Contains(out, "admin") {
		t.Fatalf("whoami: %q", out)
	}

	// A later command refuses a certificate other than the pinned one.
	creds.Fingerprint = wrong
	if err := cliconfig.Save(dir, creds); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI(t, "", "whoami")
	if err == nil || !strings.Contains(err.Error(), "not the pinned") || !strings.Contains(err.Error(), "log in again") {
		t.Fatalf("whoami with a wrong pin: %v", err)
	}

	// The API refuses plain HTTP on an https coordinator's port.
	plain := "http://" + strings.TrimPrefix(c.URL(), "https://")
	_, _, err = runCLI(t, cliAdminPW+"\n", "login", plain, "--username", "admin", "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), "HTTPS only: use "+c.URL()) {
		t.Fatalf("login over plain HTTP: %v", err)
	}
}

func colons(hex string) string {
	var b strings.Builder
	for i := 0; i < len(hex); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(hex[i : i+2])
	}
	return b.String()
}

// TestLoginErrorsSayWhatToDo: the raw Go errors of a URL without a
// scheme, https against a plain-HTTP port and a refused connection each
// become a message that says what to do.
func TestLoginErrorsSayWhatToDo(t *testing.T) {
	cliEnv(t)
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	plainHost := strings.TrimPrefix(plain.URL, "http://")
	for _, tc := range []struct {
		url  string
		want []string
	}{
		{"127.0.0.1:8080", []string{"has no scheme", "https://127.0.0.1:8080", "http://127.0.0.1:8080"}},
		{"https://" + plainHost, []string{"answers plain HTTP, not HTTPS", "use http://" + plainHost, "--tls-self-signed"}},
		{"http://" + closed, []string{"connection refused", "Is `devmesh server` running"}},
	} {
		_, _, err := runCLI(t, "pw\n", "login", tc.url, "--username", "admin", "--password-stdin")
		if err == nil {
			t.Fatalf("login %s succeeded", tc.url)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("login %s: %q lacks %q", tc.url, err, w)
			}
		}
	}
}

// runServerCmd runs `devmesh server args...` until its banner is out,
// then stops it, and returns its stderr.
func runServerCmd(t *testing.T, args ...string) string {
	t.Helper()
	root := newRootCmd()
	var stderr syncBuffer
	root.SetArgs(append([]string{"server", "--listen", "127.0.0.1:0", "--disable-provisioning", "--disable-stun", "--data-dir", t.TempDir()}, args...))
	root.SetOut(&stderr)
	root.SetErr(&stderr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(stderr.String(), "Next, in another shell") {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("server exited: %v\n%s", err, stderr.String())
		case <-deadline:
			cancel()
			<-done
			t.Fatalf("no banner within 30s:\n%s", stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("server after cancel: %v\n%s", err, stderr.String())
	}
	return stderr.String()
}

// TestServerWarnsAboutPlainHTTP: an http:// access URL on a non-loopback
// host gets a loud warning; loopback does not; --tls-self-signed prints
// the fingerprint and the login command that pins it.
func TestServerWarnsAboutPlainHTTP(t *testing.T) {
	out := runServerCmd(t, "--access-url", "http://10.1.2.3:8080")
	if !strings.Contains(out, "WARNING: the access URL http://10.1.2.3:8080 is plain HTTP") || !strings.Contains(out, "--tls-self-signed") {
		t.Fatalf("no warning for a plain-HTTP access URL:\n%s", out)
	}
	if out := runServerCmd(t); strings.Contains(out, "WARNING") {
		t.Fatalf("warning for a loopback server:\n%s", out)
	}
	out = runServerCmd(t, "--tls-self-signed", "--access-url", "https://10.1.2.3:8443")
	if strings.Contains(out, "WARNING") || !strings.Contains(out, "--fingerprint ") || !strings.Contains(out, "devmesh login https://10.1.2.3:8443") {
		t.Fatalf("self-signed banner:\n%s", out)
	}
	for u, want := range map[string]bool{
		"http://192.168.1.5:8080": true, "http://0.0.0.0:8080": true, "http://devmesh.example.com": true,
		"http://127.0.0.1:8080": false, "http://[::1]:8080": false, "http://localhost:8080": false,
		"https://192.168.1.5:8443": false,
	} {
		if got := plainHTTPWarning(u) != ""; got != want {
			t.Errorf("plainHTTPWarning(%s) = %v, want %v", u, got, want)
		}
	}
	// The reconnect caveat: only where tailscale's control client falls
	// back to https://HOST:443 (a public address or a name).
	for u, want := range map[string]bool{
		"http://192.168.1.5:8080": false, "http://10.0.0.1:8080": false,
		"http://198.18.0.2:8080": true, "http://devmesh.example.com:8080": true,
	} {
		if got := strings.Contains(plainHTTPWarning(u), "never reconnect"); got != want {
			t.Errorf("plainHTTPWarning(%s) names the reconnect caveat: %v, want %v", u, got, want)
		}
	}
}
