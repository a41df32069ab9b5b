package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// TestServerLogFormat: --log-format json writes one JSON object per
// record, text writes key=value, anything else is refused.
func TestServerLogFormat(t *testing.T) {
	var buf bytes.Buffer
	log, err := newServerLogger(&buf, "json", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("http request", "request_id", "abc", "status", 200)
	log.Debug("hidden at info")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || rec["msg"] != "http request" || rec["request_id"] != "abc" {
		t.Fatalf("json log: %q (%v)", buf.String(), err)
	}
	buf.Reset()
	if log, err = newServerLogger(&buf, "text", slog.LevelDebug); err != nil {
		t.Fatal(err)
	}
	log.Debug("node online", "node", 7)
	if !strings.Contains(buf.String(), `msg="node online" node=7`) {
		t.Fatalf("text log: %q", buf.String())
	}
	if _, err := newServerLogger(&buf, "yaml", slog.LevelInfo); err == nil || !strings.Contains(err.Error(), "want text or json") {
		t.Fatalf("--log-format yaml: %v, want a clear error", err)
	}
}

// TestServerMetricsListen: --metrics-listen binds and is announced, and
// a bad --log-format stops the server before it starts.
func TestServerMetricsListen(t *testing.T) {
	out := runServerCmd(t, "--metrics-listen", "127.0.0.1:0", "--log-format", "json")
	if !strings.Contains(out, "metrics:    http://127.0.0.1:") || !strings.Contains(out, "unauthenticated") {
		t.Fatalf("no metrics listener in the banner:\n%s", out)
	}
	if _, _, err := runCLI(t, "", "server", "--data-dir", t.TempDir(), "--log-format", "xml"); err == nil || !strings.Contains(err.Error(), "want text or json") {
		t.Fatalf("--log-format xml: %v", err)
	}
}
