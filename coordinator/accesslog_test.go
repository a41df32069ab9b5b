package coordinator_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator"
	"github.com/devmesh/devmesh/coordinator/coordtest"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logLines returns the JSON log records with that msg.
func logLines(t *testing.T, log, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// TestAccessLog: every request gets one access line with its request ID
// (the client's, echoed, or a new one), route and status, and neither
// the bearer token, the password nor the query string reaches the log.
// Control-plane events show at debug level.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	var logBuf syncBuffer
	c := coordtest.Start(t, coordtest.WithoutProvisioning(), func(cfg *coordinator.Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	_, token := setupAdmin(t, c)

	req, _ := http.NewRequest("GET", c.URL()+"/api/v1/users/me?access_token=query-secret-xyz", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Request-ID", "test-req-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-ID") != "test-req-42" {
		t.Fatalf("GET /users/me: %d, X-Request-ID %q; want 200 and the client's ID echoed", resp.StatusCode, resp.Header.Get("X-Request-ID"))
	}
	// A forged ID (it would split a text log line) is replaced.
	req, _ = http.NewRequest("GET", c.URL()+"/login/node/0123456789abcdef-login-secret", nil)
	req.Header.Set("X-Request-ID", "evil\" msg=forged")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	genID := resp.Header.Get("X-Request-ID")
	if len(genID) != 16 {
		t.Fatalf("X-Request-ID for a forged one: %q, want a new 16-hex-digit ID", genID)
	}
	// A failed login with a password.
	body := strings.NewReader(`{"username":"admin","password":"hunter2-password-secret"}`)
	resp, err = http.Post(c.URL()+"/api/v1/login", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// A node joins: its stream opens and it comes online.
	u := c.CreateUser(t, "alice", false)
	if _, err := joinNode(t, c.URL(), c.AuthKey(t, u, false, false)); err != nil {
		t.Fatal(err)
	}

	var log string
	deadline := time.Now().Add(5 * time.Second)
	for {
		log = logBuf.String()
		if len(logLines(t, log, "node online")) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	byID := map[string]map[string]any{}
	for _, rec := range logLines(t, log, "http request") {
		byID[rec["request_id"].(string)] = rec
	}
	if rec := byID["test-req-42"]; rec == nil || rec["route"] != "GET /api/v1/users/me" || rec["status"] != float64(200) || rec["path"] != "/api/v1/users/me" {
		t.Errorf("access line for test-req-42: %v", rec)
	}
	if rec := byID[genID]; rec == nil || rec["path"] != "/login/node/REDACTED" {
		t.Errorf("access line for the login link (%s): %v, want the path masked", genID, rec)
	}
	for _, secret := range []string{token, "query-secret-xyz", "hunter2-password-secret", "login-secret", "forged"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log contains %q", secret)
		}
	}
	for _, msg := range []string{"map stream opened", "node online"} {
		if len(logLines(t, log, msg)) == 0 {
			t.Errorf("no %q debug line", msg)
		}
	}
}
