package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/devmesh/devmesh/agent"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/internal/cliconfig"
	"github.com/devmesh/devmesh/node"
)

const startupScript = `echo "startup of $DEVMESH_WORKSPACE"
echo "second line"
echo "to stderr" >&2`

// wsWorld is a coordinator with users alice and bob, switched between for
// CLI commands with useUser.
type wsWorld struct {
	t           *testing.T
	coord       *coordtest.Coordinator
	alice, bob  *client.Client
	aliceTok    string
	bobTok      string
	agentClient *http.Client
	authKeys    atomic.Int32 // POST /agent/authkey calls by agents
}

func newWSWorld(t *testing.T) *wsWorld {
	t.Helper()
	cliEnv(t)
	w := &wsWorld{t: t, coord: coordtest.Start(t)}
	ctx := context.Background()
	anon, err := client.New(w.coord.URL(), "")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := anon.CreateFirstUser(ctx, client.LoginRequest{Username: "alice", Password: cliAdminPW})
	if err != nil {
		t.Fatal(err)
	}
	w.aliceTok = sess.Token
	w.alice, _ = client.New(w.coord.URL(), w.aliceTok)
	if _, err := w.alice.CreateUser(ctx, client.CreateUserRequest{Username: "bob", Password: "bob-password-1"}); err != nil {
		t.Fatal(err)
	}
	bs, err := anon.Login(ctx, client.LoginRequest{Username: "bob", Password: "bob-password-1"})
	if err != nil {
		t.Fatal(err)
	}
	w.bobTok = bs.Token
	w.bob, _ = client.New(w.coord.URL(), w.bobTok)
	w.agentClient = &http.Client{Timeout: 30 * time.Second, Transport: countAuthKeys{&w.authKeys}}
	w.useUser(w.aliceTok)
	return w
}

// useUser points the CLI at the coordinator as the owner of tok.
func (w *wsWorld) useUser(tok string) {
	w.t.Setenv(cliconfig.EnvURL, w.coord.URL())
	w.t.Setenv(cliconfig.EnvToken, tok)
}

// countAuthKeys counts agents' requests for tailnet auth keys.
type countAuthKeys struct{ n *atomic.Int32 }

func (c countAuthKeys) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/api/v1/agent/authkey") {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// runningAgent is an agent.Run in a goroutine.
type runningAgent struct {
	cancel context.CancelFunc
	done   chan error
}

func (w *wsWorld) startAgent(token, stateDir string) *runningAgent {
	w.t.Helper()
	a, err := agent.New(agent.Options{
		URL: w.coord.URL(), Token: token, StateDir: stateDir, Logger: testLog(w.t, "agent"),
		StatsInterval: 500 * time.Millisecond, HTTPClient: w.agentClient,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ra := &runningAgent{cancel: cancel, done: make(chan error, 1)}
	go func() { ra.done <- a.Run(ctx) }()
	w.t.Cleanup(func() { ra.stop(w.t) })
	return ra
}

// stop cancels the agent and returns what Run returned.
func (ra *runningAgent) stop(t *testing.T) error {
	ra.cancel()
	select {
	case err := <-ra.done:
		ra.done <- err // for a second stop
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("agent.Run did not return within 20s of cancel")
		return nil
	}
}

// waitAgent polls the owner's view of the workspace's first agent until
// ok, failing after timeout.
func waitAgent(t *testing.T, c *client.Client, ws string, timeout time.Duration, ok func(client.Agent) bool) client.Agent {
	t.Helper()
	var last client.Agent
	var lastErr error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		w, err := c.Workspace(context.Background(), ws)
		if lastErr = err; err == nil && len(w.Agents) > 0 {
			if last = w.Agents[0]; ok(last) {
				return last
			}
		}
	}
	t.Fatalf("agent of %s: condition not met within %v; last %+v, %v", ws, timeout, last, lastErr)
	return last
}

func testLog(t *testing.T, who string) *slog.Logger {
	if os.Getenv("DEVMESH_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name(), "who", who)
}

// regexpLine reports whether some line of s matches pattern.
func regexpLine(s, pattern string) bool {
	return regexp.MustCompile("(?m)" + pattern).MatchString(s)
}

// startUserNode joins an ephemeral device of the user to the tailnet.
func (w *wsWorld) startUserNode(username, host string) *node.Node {
	w.t.Helper()
	u, err := w.coord.Store().UserByName(context.Background(), username)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, node.Options{ControlURL: w.coord.URL(), AuthKey: w.coord.AuthKey(w.t, u, false, true), Hostname: host, Logger: testLog(w.t, host)})
	if err != nil {
		w.t.Fatalf("start %s: %v", host, err)
	}
	w.t.Cleanup(func() { n.Close() })
	return n
}

// sshConnect opens an SSH connection to the agent over n, verifying the
// host key the agent published.
func sshConnect(ctx context.Context, n *node.Node, addr, hostKey string) (*gossh.Client, error) {
	pk, _, _, _, err := gossh.ParseAuthorizedKey([]byte(hostKey))
	if err != nil {
		return nil, err
	}
	nc, err := n.Dial(ctx, "tcp", net.JoinHostPort(addr, "22"))
	if err != nil {
		return nil, err
	}
	sc, chans, reqs, err := gossh.NewClientConn(nc, addr, &gossh.ClientConfig{
		User: "dev", HostKeyCallback: gossh.FixedHostKey(pk), Timeout: 10 * time.Second,
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	return gossh.NewClient(sc, chans, reqs), nil
}

// sshExec runs cmd and returns its combined output and exit status.
func sshExec(t *testing.T, c *gossh.Client, cmd string) (string, int) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	var ee *gossh.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out), ee.ExitStatus()
	case err != nil:
		t.Fatalf("ssh %q: %v", cmd, err)
	}
	return string(out), 0
}

// shellSession is an open `sh` over SSH, read and written line by line.
type shellSession struct {
	s     *gossh.Session
	in    io.WriteCloser
	lines chan string
}

func openShell(t *testing.T, c *gossh.Client) *shellSession {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	in, _ := s.StdinPipe()
	out, _ := s.StdoutPipe()
	if err := s.Start("sh"); err != nil {
		t.Fatal(err)
	}
	sh := &shellSession{s: s, in: in, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			sh.lines <- sc.Text()
		}
		close(sh.lines)
	}()
	return sh
}

// roundTrip types "echo word" and waits for word.
func (sh *shellSession) roundTrip(t *testing.T, word string) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := io.WriteString(sh.in, "echo "+word+"\n"); err != nil {
		t.Fatalf("typing into the session: %v", err)
	}
	select {
	case got, ok := <-sh.lines:
		if !ok || got != word {
			t.Fatalf("session answered %q (open %v), want %q", got, ok, word)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no answer to %q within 15s", word)
	}
	return time.Since(start)
}

func TestExternalWorkspaceEndToEnd(t *testing.T) {
	w := newWSWorld(t)
	ctx := context.Background()

	// Create: the token alone on the last line of stdout, once; the
	// command to run on stderr, without it.
	stdout, stderr := mustRun(t, "", "create", "dev", "--external")
	token := lastLine(t, stdout)
	if !strings.HasPrefix(token, "dma_") || strings.Count(stdout+stderr, token) != 1 {
		t.Fatalf("create printed %q / %q", stdout, stderr)
	}
	if want := "DEVMESH_URL=" + w.coord.URL() + " DEVMESH_AGENT_TOKEN=<token> devmesh agent"; !strings.Contains(stderr, want) {
		t.Fatalf("create's stderr %q lacks %q", stderr, want)
	}
	ws, err := w.alice.Workspace(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.coord.Store().SetAgentStartup(ctx, ws.Agents[0].ID, startupScript, "", "{}"); err != nil {
		t.Fatal(err)
	}
	out, _ := mustRun(t, "", "show", "dev")
	if !strings.Contains(out, "Status:    connecting") {
		t.Fatalf("show before the agent ran:\n%s", out)
	}

	// The agent joins: connected, and ready after its startup script.
	stateDir := t.TempDir()
	start := time.Now()
	ra := w.startAgent(token, stateDir)
	waitAgent(t, w.alice, "dev", 30*time.Second, func(a client.Agent) bool { return a.Status == client.AgentConnected })
	t.Logf("measured: agent start to connected %v", time.Since(start).Round(time.Millisecond))
	ag := waitAgent(t, w.alice, "dev", 15*time.Second, func(a client.Agent) bool {
		return a.Lifecycle == client.LifecycleReady && a.SSHHostKey != ""
	})
	t.Logf("measured: agent start to ready %v", time.Since(start).Round(time.Millisecond))
	if len(ag.Addresses) != 2 || ag.OS == "" || ag.Arch == "" || ag.Version == "" {
		t.Fatalf("connected agent %+v", ag)
	}
	addr := ag.Addresses[0]
	checkCLIViews(t, ag)

	// SSH from the owner's device, verifying the published host key.
	aliceDev := w.startUserNode("alice", "alice-laptop")
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	connStart := time.Now()
	sc, err := sshConnect(dctx, aliceDev, addr, ag.SSHHostKey)
	t.Logf("measured: ssh connect (dial, handshake) %v", time.Since(connStart).Round(time.Microsecond))
	if err != nil {
		t.Fatalf("ssh to the agent: %v", err)
	}
	defer sc.Close()
	execStart := time.Now()
	out, status := sshExec(t, sc, "echo hi; exit 3")
	t.Logf("measured: ssh exec round trip (new session, echo, exit status) %v", time.Since(execStart).Round(time.Microsecond))
	if out != "hi\n" || status != 3 {
		t.Fatalf("ssh exec: %q, status %d; want \"hi\\n\", 3", out, status)
	}
	for range 3 {
		execStart = time.Now()
		sess, _ := sc.NewSession()
		t1 := time.Since(execStart)
		sess.Run("true")
		t.Logf("measured: ssh exec round trip, later session %v (open %v)", time.Since(execStart).Round(time.Microsecond), t1)
		sess.Close()
	}
	if out, _ := sshExec(t, sc, "echo $DEVMESH_WORKSPACE; env | grep -c DEVMESH_AGENT_TOKEN"); out != "dev\n0\n" {
		t.Fatalf("session environment: %q", out)
	}
	_, otherKey := newHostKey(t)
	if c, err := sshConnect(dctx, aliceDev, addr, otherKey); err == nil {
		c.Close()
		t.Fatal("SSH accepted a host key other than the published one")
	}

	// Another user's device does not even see the agent; the API says
	// the workspace does not exist for them.
	bobDev := w.startUserNode("bob", "bob-laptop")
	if inNetmap(t, bobDev, addr) {
		t.Fatal("the agent is in bob's netmap")
	}
	bctx, bcancel := context.WithTimeout(ctx, 2*time.Second)
	if c, err := bobDev.Dial(bctx, "tcp", net.JoinHostPort(addr, "22")); err == nil {
		c.Close()
		t.Fatal("bob reached the agent's SSH port")
	}
	bcancel()
	_, err = w.bob.Workspace(ctx, "dev")
	if client.ErrorCode(err) != client.CodeNotFound {
		t.Fatalf("bob's view of alice's workspace: %v", err)
	}

	// A second device of the owner works too.
	alicePhone := w.startUserNode("alice", "alice-phone")
	sc2, err := sshConnect(dctx, alicePhone, addr, ag.SSHHostKey)
	if err != nil {
		t.Fatalf("ssh from alice's second device: %v", err)
	}
	if out, status := sshExec(t, sc2, "echo phone"); out != "phone\n" || status != 0 {
		t.Fatalf("second device: %q %d", out, status)
	}
	sc2.Close()

	// An open session survives a coordinator restart.
	sh := openShell(t, sc)
	sh.roundTrip(t, "before")
	w.coord.Restart(t)
	t.Logf("measured: typing into the open session right after the coordinator restart: %v", sh.roundTrip(t, "after").Round(time.Microsecond))
	waitAgent(t, w.alice, "dev", 20*time.Second, func(a client.Agent) bool { return a.Status == client.AgentConnected })
	sh.roundTrip(t, "still")
	sh.s.Close()
	sc.Close()

	// An agent restart keeps its address and asks for no new auth key.
	if n := w.authKeys.Load(); n != 1 {
		t.Fatalf("%d auth key requests before the restart, want 1", n)
	}
	if err := ra.stop(t); err != nil {
		t.Fatalf("agent.Run after cancel: %v", err)
	}
	waitAgent(t, w.alice, "dev", 10*time.Second, func(a client.Agent) bool {
		return a.Status == client.AgentDisconnected && a.Lifecycle == client.LifecycleOff && !a.LastSeen.IsZero()
	})
	out, _ = mustRun(t, "", "show", "dev")
	if !strings.Contains(out, "disconnected (last seen") {
		t.Fatalf("show of a stopped agent:\n%s", out)
	}
	start = time.Now()
	ra = w.startAgent(token, stateDir)
	ag2 := waitAgent(t, w.alice, "dev", 30*time.Second, func(a client.Agent) bool {
		return a.Status == client.AgentConnected && a.Lifecycle == client.LifecycleReady
	})
	t.Logf("measured: agent restart to connected and ready %v", time.Since(start).Round(time.Millisecond))
	if ag2.Addresses[0] != addr || ag2.SSHHostKey != ag.SSHHostKey || w.authKeys.Load() != 1 {
		t.Fatalf("after restart: address %v (was %s), host key same %v, auth key requests %d",
			ag2.Addresses, addr, ag2.SSHHostKey == ag.SSHHostKey, w.authKeys.Load())
	}
	if nodes, _ := w.coord.Store().NodesOfAgent(ctx, ag.ID); len(nodes) != 1 {
		t.Fatalf("the agent has %d nodes, want 1", len(nodes))
	}
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	sc, err = sshConnect(rctx, aliceDev, addr, ag.SSHHostKey)
	if err != nil {
		t.Fatalf("ssh after the agent restart: %v", err)
	}
	sc.Close()

	// Deleting the workspace revokes the token: the agent stops with
	// ErrTokenRejected and its node leaves the owner's netmap.
	out, _ = mustRun(t, "", "delete", "dev")
	if !strings.Contains(out, "Deleted workspace dev.") || !strings.Contains(out, "agent main: token revoked, tailnet node "+addr) {
		t.Fatalf("delete said %q", out)
	}
	select {
	case err := <-ra.done:
		ra.done <- err
		if !errors.Is(err, agent.ErrTokenRejected) {
			t.Fatalf("agent.Run after delete: %v, want ErrTokenRejected", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the agent still runs 15s after its workspace was deleted")
	}
	waitNoPeer(t, aliceDev, addr)
}

// inNetmap reports whether a peer with that address is in n's netmap.
func inNetmap(t *testing.T, n *node.Node, addr string) bool {
	t.Helper()
	st, err := n.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Peer {
		for _, ip := range p.TailscaleIPs {
			if ip.String() == addr {
				return true
			}
		}
	}
	return false
}

func waitNoPeer(t *testing.T, n *node.Node, addr string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !inNetmap(t, n, addr) {
			return
		}
	}
	t.Fatalf("%s is still in the owner's netmap 10s after the workspace was deleted", addr)
}

// checkCLIViews checks list, show and logs against a connected, ready
// agent.
func checkCLIViews(t *testing.T, ag client.Agent) {
	t.Helper()
	out, _ := mustRun(t, "", "list")
	if !strings.Contains(out, "WORKSPACE") || !regexpLine(out, `^dev\s+\(external\)\s+-\s+main\s+connected\s+ready\s+`+ag.Addresses[0]+`\s+\S+\s+`+ag.OS+"/"+ag.Arch+`\s+now$`) {
		t.Fatalf("list:\n%s", out)
	}
	out, _ = mustRun(t, "", "list", "-o", "json")
	var list []client.Workspace
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].Agents[0].Status != client.AgentConnected {
		t.Fatalf("list -o json: %v\n%s", err, out)
	}
	out, _ = mustRun(t, "", "show", "dev")
	for _, want := range []string{"Workspace: dev", "Owner:     alice", "Status:    connected", "Lifecycle: ready", "Address:   " + ag.Addresses[0], "OS/arch:   " + ag.OS + "/" + ag.Arch} {
		if !strings.Contains(out, want) {
			t.Fatalf("show lacks %q:\n%s", want, out)
		}
	}
	out, _ = mustRun(t, "", "show", "dev", "-o", "json")
	var ws client.Workspace
	if err := json.Unmarshal([]byte(out), &ws); err != nil || ws.Agents[0].SSHHostKey != ag.SSHHostKey {
		t.Fatalf("show -o json: %v\n%s", err, out)
	}
	// stdout and stderr are read apart, so only each stream's own
	// order is kept.
	out, _ = mustRun(t, "", "logs", "dev")
	if !strings.Contains(out, "startup of dev\n") || !strings.Contains(out, "to stderr\n") ||
		strings.Index(out, "startup of dev") > strings.Index(out, "second line") || strings.Count(out, "\n") != 3 {
		t.Fatalf("logs:\n%q", out)
	}
}

func newHostKey(t *testing.T) (gossh.PublicKey, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := gossh.NewPublicKey(pub)
	return pk, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pk)))
}
