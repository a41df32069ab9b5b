package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/internal/secret"
)

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("DEVMESH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return nil
}

func TestSessionEnvNeverHasTheToken(t *testing.T) {
	const token = "dma_secretsecretsecret"
	m := client.AgentManifest{
		WorkspaceName: "dev", Owner: "alice", AgentName: "main",
		Env: map[string]string{"B": "2", "A": "1", envToken: token, "": "x", "X=Y": "z"},
	}
	want := []string{"A=1", "B=2", "DEVMESH_WORKSPACE=dev", "DEVMESH_WORKSPACE_OWNER=alice", "DEVMESH_AGENT=main"}
	if got := sessionEnv(m); !slices.Equal(got, want) {
		t.Fatalf("sessionEnv = %q, want %q", got, want)
	}
	base := []string{"HOME=/home/a", envToken + "=" + token, "OTHER=has " + token + " inside", "PATH=/bin"}
	got := scriptEnv(base, m, token)
	if !slices.Equal(got, append([]string{"HOME=/home/a", "PATH=/bin"}, want...)) {
		t.Fatalf("scriptEnv = %q", got)
	}
}

func TestReadLines(t *testing.T) {
	long := strings.Repeat("é", client.MaxAgentLogLineBytes) // 2 bytes each
	in := "one\r\n\ntwo\n" + long + "\nbad\xffbyte\nlast"
	var got []string
	readLines(strings.NewReader(in), func(s string) { got = append(got, s) })
	if len(got) < 6 || got[0] != "one" || got[1] != "" || got[2] != "two" {
		t.Fatalf("lines %q", got[:3])
	}
	var rebuilt strings.Builder
	for _, l := range got[3 : len(got)-2] {
		if len(l) > client.MaxAgentLogLineBytes {
			t.Fatalf("a line of %d bytes", len(l))
		}
		rebuilt.WriteString(l)
	}
	// The long line is split into valid UTF-8 pieces; a rune cut by the
	// split shows as one replacement character at most per piece.
	if n := strings.Count(rebuilt.String(), "é"); n < len([]rune(long))-4 {
		t.Fatalf("long line lost %d runes", len([]rune(long))-n)
	}
	if got[len(got)-2] != "bad\uFFFDbyte" || got[len(got)-1] != "last" {
		t.Fatalf("tail %q", got[len(got)-2:])
	}
}

// startupFixture is a real API with a workspace whose agent runs script,
// and an Agent (without a tailnet) for that agent token.
func startupFixture(t *testing.T, script string) (*apitest.Server, *client.Client, *Agent, client.AgentManifest) {
	t.Helper()
	srv := apitest.New(t)
	ctx := context.Background()
	owner := srv.Client(t, srv.Bootstrap(t, "alice", "alice-password-1"))
	created, err := owner.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", External: true})
	if err != nil {
		t.Fatal(err)
	}
	ag, err := srv.Store.AgentByTokenHash(ctx, secret.Hash(created.AgentToken))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Store.SetAgentStartup(ctx, ag.ID, script, t.TempDir(), `{"GREETING":"hello"}`); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envToken, created.AgentToken) // as `devmesh agent` has it
	a, err := New(Options{URL: srv.URL, Token: created.AgentToken, StateDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.api.AgentManifest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return srv, owner, a, m
}

// runStartupFor runs the startup phase as Run would and returns the
// lifecycle and logs the owner then sees.
func runStartupFor(t *testing.T, a *Agent, owner *client.Client, m client.AgentManifest, timeout time.Duration) (string, []client.AgentLog, time.Duration) {
	t.Helper()
	ctx, stop := context.WithCancelCause(context.Background())
	defer stop(nil)
	a.stop = stop
	logs := newLogSender(a)
	done := make(chan struct{})
	go func() { defer close(done); logs.run(ctx) }()
	start := time.Now()
	finished := make(chan struct{})
	go func() { defer close(finished); a.runStartup(ctx, m, logs) }()
	defer func() { stop(nil); <-done; <-finished }()
	var ws client.Workspace
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		var err error
		ws, err = owner.Workspace(ctx, "dev")
		if err != nil {
			t.Fatal(err)
		}
		if lc := ws.Agents[0].Lifecycle; lc == client.LifecycleReady || lc == client.LifecycleStartError {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lifecycle still %q after %v", ws.Agents[0].Lifecycle, timeout)
		}
	}
	took := time.Since(start)
	var all []client.AgentLog
	for {
		page, err := owner.AgentLogs(ctx, "dev", "main", lastID(all))
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
	}
	return ws.Agents[0].Lifecycle, all, took
}

func lastID(logs []client.AgentLog) int64 {
	if len(logs) == 0 {
		return 0
	}
	return logs[len(logs)-1].ID
}

func TestStartupScriptReady(t *testing.T) {
	script := `echo "$GREETING from $DEVMESH_WORKSPACE.$DEVMESH_AGENT of $DEVMESH_WORKSPACE_OWNER in $(pwd)"
echo oops >&2
i=0; while [ $i -lt 2500 ]; do echo "line $i"; i=$((i+1)); done
env
# A background process that keeps the output pipes open must not hold
# up "ready".
(sleep 20; echo late) &
echo done`
	_, owner, a, m := startupFixture(t, script)
	state, logs, took := runStartupFor(t, a, owner, m, 30*time.Second)
	if state != client.LifecycleReady {
		t.Fatalf("lifecycle %q", state)
	}
	// Well under the background process's 20 s, with room for a loaded
	// machine (CI once took over 5 s for the 2,500 lines).
	if took > 12*time.Second {
		t.Fatalf("ready after %v: the background process held it up", took)
	}
	var out []string
	for _, l := range logs {
		if strings.Contains(l.Output, a.opts.Token) {
			t.Fatalf("the agent token is in the script's output: %q", l.Output)
		}
		if l.Stream == client.StreamStderr {
			if l.Output != "oops" {
				t.Fatalf("stderr line %q", l.Output)
			}
			continue
		}
		out = append(out, l.Output)
	}
	if want := fmt.Sprintf("hello from dev.main of alice in %s", m.Dir); out[0] != want {
		t.Fatalf("first line %q, want %q", out[0], want)
	}
	for i := range 2500 {
		if out[1+i] != fmt.Sprintf("line %d", i) {
			t.Fatalf("line %d is %q: lines lost or out of order", i, out[1+i])
		}
	}
	if out[len(out)-1] != "done" {
		t.Fatalf("last line %q (ready was reported before the output was delivered)", out[len(out)-1])
	}
}

func TestStartupScriptError(t *testing.T) {
	_, owner, a, m := startupFixture(t, "echo trying; exit 7")
	state, logs, _ := runStartupFor(t, a, owner, m, 10*time.Second)
	if state != client.LifecycleStartError {
		t.Fatalf("lifecycle %q", state)
	}
	if len(logs) != 2 || logs[0].Output != "trying" || !strings.Contains(logs[1].Output, "exit status 7") {
		t.Fatalf("logs %+v", logs)
	}
}

func TestNoStartupScript(t *testing.T) {
	_, owner, a, m := startupFixture(t, "")
	if state, logs, _ := runStartupFor(t, a, owner, m, 10*time.Second); state != client.LifecycleReady || len(logs) != 0 {
		t.Fatalf("lifecycle %q, logs %+v", state, logs)
	}
}

// TestLogsWaitForTheCoordinator: lines written while the coordinator
// refuses connections are delivered, in order, once it is back.
func TestLogsWaitForTheCoordinator(t *testing.T) {
	srv, owner, a, _ := startupFixture(t, "")
	ctx, stop := context.WithCancelCause(context.Background())
	a.stop = stop
	logs := newLogSender(a)
	done := make(chan struct{})
	go func() { defer close(done); logs.run(ctx) }()
	defer func() { stop(nil); <-done }()

	// An HTTP client that fails until allowed models the outage.
	var up atomic.Bool
	a.api = mustClient(t, srv.URL, a.opts.Token, &up)
	for i := range 50 {
		logs.add(client.StreamStdout, fmt.Sprintf("offline %d", i))
	}
	time.Sleep(600 * time.Millisecond) // several failed attempts
	up.Store(true)
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	logs.flush(fctx)
	if fctx.Err() != nil {
		t.Fatal("flush did not complete after the coordinator came back")
	}
	got, err := owner.AgentLogs(context.Background(), "dev", "main", 0)
	if err != nil || len(got) != 50 || got[0].Output != "offline 0" || got[49].Output != "offline 49" {
		t.Fatalf("logs after the outage: %d lines, %v", len(got), err)
	}
}

// gatedTransport fails every request until up is set, like a coordinator
// that is down.
type gatedTransport struct{ up *atomic.Bool }

func (g gatedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !g.up.Load() {
		return nil, errors.New("connection refused (test outage)")
	}
	return http.DefaultTransport.RoundTrip(r)
}

func mustClient(t *testing.T, url, token string, up *atomic.Bool) *client.Client {
	t.Helper()
	c, err := client.New(url, token, client.WithHTTPClient(&http.Client{Transport: gatedTransport{up}}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
