package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/internal/cliconfig"
)

// TestCLIWorkspaceBadInput: clear messages, non-zero exits, nothing
// created.
func TestCLIWorkspaceBadInput(t *testing.T) {
	cliEnv(t)
	srv := apitest.New(t)
	t.Setenv(cliconfig.EnvURL, srv.URL)
	t.Setenv(cliconfig.EnvToken, srv.Bootstrap(t, "alice", cliAdminPW))
	mustRun(t, "", "create", "dev", "--external")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "Bad_Name", "--external"}, `invalid workspace name "Bad_Name"`},
		{[]string{"create", "dev", "--external"}, `you already have a workspace called "dev"`},
		{[]string{"create", "x"}, "--external (bring your own machine) or --template NAME"},
		{[]string{"create", "x", "--external", "--template", "t"}, "choose one"},
		{[]string{"create", "x", "--external", "--var", "a=b"}, "--var applies only with --template"},
		{[]string{"create", "x", "--template", "t", "--var", "novalue"}, `invalid --var "novalue"`},
		{[]string{"create", "x", "--template", "t", "--var", "a=1", "--var", "a=2"}, "--var a given twice"},
		{[]string{"create", "x", "--template", "t"}, "provisioning is disabled"},
		{[]string{"create", "x", "--external", "--no-wait"}, "--no-wait applies only with --template"},
		{[]string{"logs", "dev", "--build", "x"}, `want a build number or "latest"`},
		{[]string{"logs", "dev", "--build", "1", "--agent", "main"}, "choose one"},
		{[]string{"show", "nope"}, `you have no workspace called "nope"`},
		{[]string{"show", "dev", "-o", "yaml"}, `unknown output format "yaml"`},
		{[]string{"delete", "nope"}, `you have no workspace called "nope"`},
		{[]string{"logs", "nope"}, `you have no workspace called "nope"`},
		{[]string{"logs", "dev", "--agent", "other"}, `workspace dev has no agent called "other" (it has main)`},
	} {
		stdout, _, err := runCLI(t, "", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("devmesh %s: err = %v, want it to contain %q", strings.Join(tc.args, " "), err, tc.want)
		}
		if strings.Contains(stdout, "dma_") {
			t.Errorf("devmesh %s printed a token on failure", strings.Join(tc.args, " "))
		}
	}
	if n := countWorkspaces(t, srv); n != 1 {
		t.Fatalf("%d workspaces after bad commands, want 1", n)
	}
	// Logs of an agent that never ran: nothing, successfully.
	if out, _ := mustRun(t, "", "logs", "dev"); out != "" {
		t.Fatalf("logs of a new agent: %q", out)
	}
	out, _ := mustRun(t, "", "delete", "dev")
	if !strings.Contains(out, "agent main: token revoked (it had not joined the tailnet)") {
		t.Fatalf("delete: %q", out)
	}
}

func countWorkspaces(t *testing.T, srv *apitest.Server) int {
	t.Helper()
	l, err := srv.Store.ListWorkspaces(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(l)
}

func TestCLIAgentNeedsItsEnvironment(t *testing.T) {
	cliEnv(t)
	for _, env := range [][2]string{{"", ""}, {"http://127.0.0.1:1", ""}, {"", "dma_x"}} {
		t.Setenv(envAgentURL, env[0])
		t.Setenv(envAgentToken, env[1])
		_, _, err := runCLI(t, "", "agent", "--state-dir", t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "DEVMESH_URL and DEVMESH_AGENT_TOKEN must be set") {
			t.Fatalf("agent with URL %q token %q: %v", env[0], env[1], err)
		}
	}
	// No flag carries the token.
	if _, _, err := runCLI(t, "", "agent", "--token", "dma_x"); err == nil || !strings.Contains(err.Error(), "unknown flag") {
		t.Fatalf("agent --token: %v", err)
	}
}

func TestDefaultAgentStateDir(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/xdg/state")
	if d, _ := defaultAgentStateDir(); d != "/xdg/state/devmesh-agent" {
		t.Fatalf("with XDG_STATE_HOME: %s", d)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d, _ := defaultAgentStateDir(); d != "/home/u/.local/state/devmesh-agent" {
		t.Fatalf("without XDG_STATE_HOME: %s", d)
	}
}

// TestAgentBinary runs `devmesh agent` as a real process (the binary
// that `make test` builds, in $DEVMESH_BIN): it connects with the
// token from its environment, logs to --log-file, and stops cleanly on
// SIGTERM.
func TestAgentBinary(t *testing.T) {
	bin := os.Getenv("DEVMESH_BIN")
	if bin == "" {
		t.Skip("DEVMESH_BIN is not set (make test sets it)")
	}
	coord := coordtest.Start(t)
	ctx := context.Background()
	anon, _ := client.New(coord.URL(), "")
	sess, err := anon.CreateFirstUser(ctx, client.LoginRequest{Username: "alice", Password: cliAdminPW})
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := client.New(coord.URL(), sess.Token)
	created, err := alice.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "box", External: true})
	if err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(t.TempDir(), "state")
	logFile := filepath.Join(t.TempDir(), "agent.log")
	cmd := exec.Command(bin, "agent", "--state-dir", stateDir, "--log-file", logFile)
	cmd.Env = append(os.Environ(), envAgentURL+"="+coord.URL(), envAgentToken+"="+created.AgentToken)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	waitAgent(t, alice, "box", 30*time.Second, func(a client.Agent) bool {
		return a.Status == client.AgentConnected && a.Lifecycle == client.LifecycleReady
	})
	if fi, err := os.Stat(stateDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v, %v", fi, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("agent exited with %v on SIGTERM:\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("agent still running 15s after SIGTERM:\n%s", logs.String())
	}
	fileLog, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(fileLog), "level=INFO") {
		t.Fatalf("--log-file holds no log lines:\n%s\nstderr:\n%s", fileLog, logs.String())
	}
	if fi, _ := os.Stat(logFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("log file mode %v, want 0600", fi.Mode().Perm())
	}
	if strings.Contains(logs.String()+string(fileLog), created.AgentToken) {
		t.Fatal("the agent logged its token")
	}
	waitAgent(t, alice, "box", 10*time.Second, func(a client.Agent) bool { return a.Lifecycle == client.LifecycleOff })
}

// TestLogsFollow: -f prints lines as the agent sends them and returns
// cleanly when interrupted.
func TestLogsFollow(t *testing.T) {
	cliEnv(t)
	srv := apitest.New(t)
	ctx := context.Background()
	owner := srv.Client(t, srv.Bootstrap(t, "alice", cliAdminPW))
	created, err := owner.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", External: true})
	if err != nil {
		t.Fatal(err)
	}
	agentAPI := srv.Client(t, created.AgentToken)
	if err := agentAPI.PostAgentLogs(ctx, []client.AgentLogLine{{Output: "first"}}); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { _, err := printAgentLogs(fctx, out, owner, "dev", "main", true); done <- err }()
	waitOutput(t, out, "first\n")
	if err := agentAPI.PostAgentLogs(ctx, []client.AgentLogLine{{Output: "second"}, {Output: "third"}}); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, out, "first\nsecond\nthird\n")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("follow after interrupt: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not stop when interrupted")
	}
}

func waitOutput(t *testing.T, b *syncBuffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b.String() == want {
			return
		}
	}
	t.Fatalf("output %q, want %q", b.String(), want)
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
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
