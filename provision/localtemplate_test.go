package provision

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/provision/tfprovider/tfprovidertest"
)

// TestLocalTemplate runs the quickstart template, examples/templates/local,
// through a workspace's life. The test binary stands in for `devmesh
// agent` (see fakeAgent): it reports how it was started.
func TestLocalTemplate(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	t.Parallel()
	r := newTestRunner(t, Options{})
	archive, err := Pack(filepath.Join("..", "examples", "templates", "local"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Validate(context.Background(), archive); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	ws := Workspace{ID: "0b5c2c8e-8a8f-4a52-bf0e-5b0c8f3f5d21", Name: "quick", Owner: "alice", AccessURL: "https://127.0.0.1:7070",
		Fingerprint: strings.Repeat("ab", 32)}
	dir := filepath.Join(root, ws.ID)
	var state []byte
	build := func(tr Transition) BuildResult {
		t.Helper()
		var logs logRecorder
		start := time.Now()
		res, err := r.Build(context.Background(), BuildRequest{Archive: archive, Transition: tr, State: state,
			Variables: map[string]string{"workspaces_dir": root}, Workspace: ws, Log: logs.log})
		if err != nil {
			t.Fatalf("%s: %v\nlog:\n%s", tr, err, logs.text())
		}
		t.Logf("%s build of the local template took %v (%s)", tr, time.Since(start), stageTimes(&logs))
		state = res.State
		return res
	}

	res := build(TransitionStart)
	if len(res.Agents) != 1 || res.Agents[0].Dir != filepath.Join(dir, "home") {
		t.Fatalf("agents: %+v", res.Agents)
	}
	if len(res.Metadata) != 1 || res.Metadata[0].Items[0] != (MetadataItem{Key: "directory", Value: dir}) {
		t.Errorf("metadata: %+v", res.Metadata)
	}
	agent := res.Agents[0]
	first := waitAgent(t, dir, 0)
	if first.Token != agent.Token || first.URL != ws.AccessURL || strings.Join(first.Args, " ") != "agent" {
		t.Errorf("agent started with url %q, args %q, token ok: %v", first.URL, first.Args, first.Token == agent.Token)
	}
	if first.Fingerprint != ws.Fingerprint {
		t.Errorf("agent started with DEVMESH_FINGERPRINT %q, want %q", first.Fingerprint, ws.Fingerprint)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", first.PID))
	if err != nil || bytes.Contains(cmdline, []byte(agent.Token)) {
		t.Errorf("agent command line %q (%v) holds the token", cmdline, err)
	}
	if pid := readPIDFile(t, dir); pid != first.PID {
		t.Errorf("pidfile says %d, agent is %d", pid, first.PID)
	}

	build(TransitionStop)
	waitGone(t, first.PID, 5*time.Second)
	if _, err := os.Stat(filepath.Join(dir, "agent.pid")); !os.IsNotExist(err) {
		t.Errorf("pidfile after stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "home")); err != nil {
		t.Errorf("stop removed the workspace: %v", err)
	}

	res = build(TransitionStart)
	if res.Agents[0].Token != agent.Token {
		t.Error("token changed across stop and start")
	}
	second := waitAgent(t, dir, first.PID)

	build(TransitionDelete)
	waitGone(t, second.PID, 5*time.Second)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("workspace directory after delete: %v", err)
	}
}

// waitAgent waits for the stand-in agent of the workspace in dir, other
// than the one with pid old, to report.
func waitAgent(t *testing.T, dir string, old int) tfprovidertest.FakeAgentReport {
	return tfprovidertest.WaitFakeAgent(t, filepath.Join(dir, "home"), old)
}

func readPIDFile(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "agent.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// stageTimes says how long each stage of a build took, by its log lines.
func stageTimes(logs *logRecorder) string {
	var parts []string
	var stage Stage
	var first, last time.Time
	flush := func() {
		if stage != "" {
			parts = append(parts, fmt.Sprintf("%s %v", stage, last.Sub(first).Round(time.Millisecond)))
		}
	}
	for _, l := range logs.lines {
		if l.Stage != stage {
			flush()
			stage, first = l.Stage, l.Time
		}
		last = l.Time
	}
	flush()
	return strings.Join(parts, ", ")
}
