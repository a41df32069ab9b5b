package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/cliconfig"
	"github.com/devmesh/devmesh/node"
	"github.com/devmesh/devmesh/provision"
	"github.com/devmesh/devmesh/provision/tfprovider/tfprovidertest"
)

// End-to-end tests of template workspaces with the real pieces: a full
// coordinator whose devmesh binary is this test binary (see TestMain: it
// is terraform's devmesh provider and the agent the templates start), real
// terraform, the CLI run in-process, and SSH over the tailnet from a node
// of the owner.

// templateFlow describes one example template for runTemplateFlow.
type templateFlow struct {
	template  string // examples/templates/NAME
	vars      map[string]string
	coordOpts []coordtest.Option
	// sshCheck is a command run over SSH once the workspace is started,
	// and what its output must contain.
	sshCheck, sshWant string
	// started, stopped and deleted check the workspace's resources on the
	// host after each build; cleanup removes whatever a failed test left.
	started, stopped, deleted func(t *testing.T, ws store.Workspace)
	cleanup                   func(ws store.Workspace)
}

// runTemplateFlow is issue 4's whole flow through the CLI: push the
// template, create a workspace (which follows the build and waits for the
// agent), SSH into it (with a node of the owner verifying the published
// host key, and with `devmesh ssh`), stop it (agent gone, token revoked,
// state kept), start it (agent back with a new token, the old one still
// refused, the same SSH host key), delete it (resources and workspace
// gone). It logs the time
// from create to a connected agent and the coordinator's overhead on the
// build.
func runTemplateFlow(t *testing.T, f templateFlow) {
	if _, err := provision.CheckTerraform(context.Background(), ""); err != nil {
		t.Skipf("needs terraform: %v", err)
	}
	dir := cliEnv(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	coord := coordtest.Start(t, append(f.coordOpts, coordtest.WithDevmeshBinary(self))...)
	ctx := context.Background()
	mustRun(t, cliAdminPW+"\n", "login", coord.URL(), "--username", "alice", "--password-stdin")
	mustRun(t, "", "templates", "push", f.template, "-d", filepath.Join("..", "..", "examples", "templates", f.template))
	creds, err := cliconfig.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client.New(coord.URL(), creds.Token)

	// Create: follows the build, then waits for the agent.
	args := []string{"create", "dev", "--template", f.template}
	for k, v := range f.vars {
		args = append(args, "--var", k+"="+v)
	}
	start := time.Now()
	stdout, stderr, err := runCLI(t, "", args...)
	ready := time.Now()
	ws, lerr := coord.Store().WorkspaceByName(ctx, mustUser(t, coord.Store(), "alice").ID, "dev")
	if lerr == nil && f.cleanup != nil {
		t.Cleanup(func() { f.cleanup(ws) })
	}
	if err != nil {
		t.Fatalf("devmesh %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout, stderr)
	}
	for _, want := range []string{"Build #1 (start) of dev succeeded", "Workspace dev is ready", "Connect with: devmesh ssh dev"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("create's stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "==> terraform apply") || !strings.Contains(stderr, "Created workspace dev from template "+f.template) {
		t.Errorf("create's stderr:\n%s", stderr)
	}
	logBuildTimes(t, c, "dev", 1, start, ready)
	f.started(t, ws)
	checkTemplateViews(t, f.template)

	owner := startOwnerNode(t, coord, "alice")
	ag := waitConnected(t, c, "dev", true)
	sshOK(t, owner, ag, f.sshCheck, f.sshWant)
	hostKey := ag.SSHHostKey
	token1 := agentToken(t, coord.Store(), ws.ID)
	if _, err := agentClient(t, coord, token1).AgentManifest(ctx); err != nil {
		t.Fatalf("the running agent's token: %v", err)
	}

	// Stop: the agent goes, its token with it; the state stays.
	stdout, _ = mustRun(t, "", "stop", "dev")
	if !strings.Contains(stdout, "Build #2 (stop) of dev succeeded") {
		t.Errorf("stop: %q", stdout)
	}
	waitConnected(t, c, "dev", false)
	wantRejected(t, coord, token1, "after stop")
	if st, _ := coord.Store().WorkspaceState(ctx, ws.ID); !strings.Contains(string(st), `"terraform_data"`) {
		t.Error("state lost on stop")
	}
	f.stopped(t, ws)
	if out, _ := mustRun(t, "", "list"); !regexpLine(out, `^dev\s+`+f.template+` v1\s+stopped\s+-`) {
		t.Errorf("list of a stopped workspace:\n%s", out)
	}

	// Start: the agent comes back with a new token; the old one stays
	// refused.
	restart := time.Now()
	mustRun(t, "", "start", "dev")
	ag = waitAgent(t, c, "dev", 60*time.Second, func(a client.Agent) bool {
		return a.Status == client.AgentConnected && a.SSHHostKey != ""
	})
	t.Logf("measured: start after stop to agent connected %v", time.Since(restart).Round(time.Millisecond))
	if ag.SSHHostKey != hostKey {
		t.Errorf("the SSH host key changed with the restart (known_hosts would refuse it): %s, was %s", ag.SSHHostKey, hostKey)
	}
	token2 := agentToken(t, coord.Store(), ws.ID)
	if token2 == token1 {
		t.Fatal("the start after the stop kept the old agent token")
	}
	wantRejected(t, coord, token1, "after the new start")
	if _, err := agentClient(t, coord, token2).AgentManifest(ctx); err != nil {
		t.Fatalf("the new token: %v", err)
	}
	f.started(t, ws)
	stdout, stderr, err = runCLI(t, "", "ssh", "dev", "--", "echo", "ok")
	if err != nil || stdout != "ok\n" {
		t.Fatalf("devmesh ssh dev -- echo ok after restart: %v, stdout %q, stderr %q", err, stdout, stderr)
	}

	// Delete: a destroy build, then the workspace is gone.
	stdout, _ = mustRun(t, "", "delete", "dev")
	if !strings.Contains(stdout, "Build #4 (delete) of dev succeeded") || !strings.Contains(stdout, "the workspace is deleted") {
		t.Errorf("delete: %q", stdout)
	}
	if _, err := c.Workspace(ctx, "dev"); client.ErrorCode(err) != client.CodeNotFound {
		t.Fatalf("the workspace after delete returned: %v", err)
	}
	wantRejected(t, coord, token2, "after delete")
	f.deleted(t, ws)
}

// logBuildTimes logs how long the first build took against terraform's
// own apply, and the time from create to the agent connected.
func logBuildTimes(t *testing.T, c *client.Client, ws string, number int, start, ready time.Time) {
	t.Helper()
	var logs []client.BuildLog
	b, err := c.FollowBuild(context.Background(), ws, number, 0, func(l client.BuildLog) { logs = append(logs, l) })
	if err != nil {
		t.Fatal(err)
	}
	wall, apply := b.FinishedAt.Sub(b.CreatedAt), stageSpan(logs, "apply")
	t.Logf("measured: create to agent connected (and host key published) %v; build wall time %v, terraform apply %v: "+
		"coordinator overhead %v; build finished to agent ready %v",
		ready.Sub(start).Round(time.Millisecond), wall.Round(time.Millisecond), apply.Round(time.Millisecond),
		(wall - apply).Round(time.Millisecond), ready.Sub(b.FinishedAt).Round(time.Millisecond))
	t.Logf("measured: build phases: %s", phases(b, logs))
}

// checkTemplateViews checks list, show, logs --build and their JSON for
// the started workspace dev.
func checkTemplateViews(t *testing.T, template string) {
	t.Helper()
	out, _ := mustRun(t, "", "list")
	if !regexpLine(out, `^dev\s+`+template+` v1\s+started\s+main\s+connected\s+`) {
		t.Errorf("list:\n%s", out)
	}
	out, _ = mustRun(t, "", "show", "dev")
	for _, re := range []string{`^Template:\s+` + template + ` \(version 1\)$`, `^State:\s+started$`,
		`^Latest build:\s+#1 start succeeded in \S+, .* by alice$`, `^Metadata:$`, `^  directory:\s+/`} {
		if !regexpLine(out, re) {
			t.Errorf("show lacks %s:\n%s", re, out)
		}
	}
	out, _ = mustRun(t, "", "show", "dev", "-o", "json")
	var ws client.Workspace
	if err := json.Unmarshal([]byte(out), &ws); err != nil || ws.Template != template || ws.LatestBuild == nil ||
		ws.LatestBuild.Status != client.BuildSucceeded || len(ws.Metadata) == 0 {
		t.Errorf("show -o json: %v\n%s", err, out)
	}
	out, _ = mustRun(t, "", "logs", "dev", "--build", "1")
	if !strings.Contains(out, "Apply complete!") || !strings.Contains(out, "devmesh: build succeeded") {
		t.Errorf("logs --build 1:\n%s", out)
	}
}

// startOwnerNode joins an ephemeral device of the user to the tailnet.
func startOwnerNode(t *testing.T, coord *coordtest.Coordinator, username string) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u := mustUser(t, coord.Store(), username)
	n, err := node.Start(ctx, node.Options{ControlURL: coord.URL(), AuthKey: coord.AuthKey(t, u, false, true),
		Hostname: username + "-laptop", Logger: testLog(t, username+"-laptop")})
	if err != nil {
		t.Fatalf("start %s's device: %v", username, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// sshOK runs `echo ok` and check over SSH from the owner's node, checking
// the server against the host key the agent published, and logs the path
// the connection took (direct or relayed).
func sshOK(t *testing.T, n *node.Node, ag client.Agent, check, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	sc, err := sshConnect(ctx, n, ag.Addresses[0], ag.SSHHostKey)
	if err != nil {
		t.Fatalf("ssh to the agent at %s: %v", ag.Addresses[0], err)
	}
	defer sc.Close()
	if out, status := sshExec(t, sc, "echo ok"); out != "ok\n" || status != 0 {
		t.Fatalf("ssh echo ok: %q, status %d", out, status)
	}
	t.Logf("measured: ssh connect and `echo ok` from the owner's node %v", time.Since(start).Round(time.Millisecond))
	if check != "" {
		if out, status := sshExec(t, sc, check); status != 0 || !strings.Contains(out, want) {
			t.Errorf("ssh %q: %q, status %d; want %q in it", check, out, status, want)
		}
	}
	_, otherKey := newHostKey(t)
	if c, err := sshConnect(ctx, n, ag.Addresses[0], otherKey); err == nil {
		c.Close()
		t.Fatal("SSH accepted a host key other than the published one")
	}
	ip, _ := netip.ParseAddr(ag.Addresses[0])
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	res, err := n.WaitDirect(pctx, ip)
	switch {
	case err == nil:
		t.Logf("measured: path to the agent: direct, %s, %v", res.Endpoint, res.Latency.Round(time.Microsecond))
	default:
		t.Logf("measured: path to the agent: relayed (DERP region %d) after 5s of pings: %v", res.DERPRegion, err)
	}
}

// agentToken reads the agent token of the workspace's only devmesh_agent
// out of its stored terraform state.
func agentToken(t *testing.T, st *store.Store, workspaceID int64) string {
	t.Helper()
	state, err := st.WorkspaceState(context.Background(), workspaceID)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Resources []struct {
			Type      string `json:"type"`
			Instances []struct {
				Attributes struct {
					Token string `json:"token"`
				} `json:"attributes"`
			} `json:"instances"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(state, &s); err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Resources {
		if r.Type == "devmesh_agent" && len(r.Instances) == 1 && r.Instances[0].Attributes.Token != "" {
			return r.Instances[0].Attributes.Token
		}
	}
	t.Fatal("no devmesh_agent token in the state")
	return ""
}

func agentClient(t *testing.T, coord *coordtest.Coordinator, token string) *client.Client {
	t.Helper()
	c, err := client.New(coord.URL(), token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantRejected checks the coordinator answers the agent token with 401.
func wantRejected(t *testing.T, coord *coordtest.Coordinator, token, when string) {
	t.Helper()
	_, err := agentClient(t, coord, token).AgentManifest(context.Background())
	var e *client.Error
	if ae, ok := err.(*client.Error); ok {
		e = ae
	}
	if e == nil || e.Status != 401 || e.Code != client.CodeUnauthorized {
		t.Fatalf("an old agent token %s: %v, want 401 unauthorized", when, err)
	}
}

// waitConnected waits until the workspace's only agent is connected, or
// (connected false) until it has no agent.
func waitConnected(t *testing.T, c *client.Client, ws string, connected bool) client.Agent {
	t.Helper()
	var last client.Workspace
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		w, err := c.Workspace(context.Background(), ws)
		if err != nil {
			t.Fatal(err)
		}
		last = w
		if !connected && len(w.Agents) == 0 {
			return client.Agent{}
		}
		if connected && len(w.Agents) == 1 && w.Agents[0].Status == client.AgentConnected {
			return w.Agents[0]
		}
	}
	t.Fatalf("workspace %s: agents %+v (want connected: %v)", ws, last.Agents, connected)
	return client.Agent{}
}

// stageSpan returns how long the lines of stage spanned in a build's log.
func stageSpan(logs []client.BuildLog, stage string) time.Duration {
	var first, last time.Time
	for _, l := range logs {
		if l.Stage != stage {
			continue
		}
		if first.IsZero() {
			first = l.Time
		}
		last = l.Time
	}
	return last.Sub(first)
}

// phases breaks a build's wall time down by its log: queueing, devmesh's
// setup, terraform init, the gap to apply, apply, and what follows
// (reading the new state, storing it, registering agents).
func phases(b client.Build, logs []client.BuildLog) string {
	first := map[string]time.Time{}
	last := map[string]time.Time{}
	for _, l := range logs {
		if _, ok := first[l.Stage]; !ok {
			first[l.Stage] = l.Time
		}
		last[l.Stage] = l.Time
	}
	d := func(from, to time.Time) time.Duration { return to.Sub(from).Round(time.Millisecond) }
	return fmt.Sprintf("queued %v, setup %v, init %v, init->apply %v, apply %v, apply->finished %v",
		d(b.CreatedAt, b.StartedAt), d(b.StartedAt, first["init"]), d(first["init"], last["init"]),
		d(last["init"], first["apply"]), d(first["apply"], last["apply"]), d(last["apply"], b.FinishedAt))
}

// TestLocalTemplateFlow is issue 4's test 1 with the quickstart's local
// template: the agent is a process on this host. Issue 8: ~ is the
// workspace's home (for SSH sessions and the startup script), and stop and
// delete end every process the workspace started, the startup script's
// background job and a nohup'd process an SSH session left included.
func TestLocalTemplateFlow(t *testing.T) {
	root := t.TempDir()
	wsDir := func(ws store.Workspace) string { return filepath.Join(root, ws.UUID) }
	var leftovers []int // processes the workspace started, gone after stop
	runTemplateFlow(t, templateFlow{
		template: "local",
		vars: map[string]string{"workspaces_dir": root,
			"startup_script": `sleep 1000 >/dev/null 2>&1 & echo $! >"$HOME/startup.pid"
DEVMESH_TEST_LISTEN_FILE="$HOME/listen.port" "$DEVMESH_BINARY" -test.run='^TestListenerProcess$' >/dev/null 2>&1 &`},
		sshCheck: "cd; pwd",
		sshWant:  root,
		started: func(t *testing.T, ws store.Workspace) {
			if pid := pidFile(t, filepath.Join(wsDir(ws), "agent.pid")); pid == 0 || !tfprovidertest.ProcessAlive(pid) {
				t.Fatalf("no agent process running for the workspace (pid %d)", pid)
			}
			home := filepath.Join(wsDir(ws), "home")
			if out, stderr, err := runCLI(t, "", "ssh", "dev", "--", "cd; pwd; echo ~"); err != nil || out != home+"\n"+home+"\n" {
				t.Errorf("cd; pwd; echo ~ over ssh: %q (%v, %s), want the workspace's home %s twice", out, err, stderr, home)
			}
			out, stderr, err := runCLI(t, "", "ssh", "dev", "--", "nohup sleep 1001 >/dev/null 2>&1 & echo $!")
			pid, perr := strconv.Atoi(strings.TrimSpace(out))
			if err != nil || perr != nil || !tfprovidertest.ProcessAlive(pid) {
				t.Fatalf("a session's background process: %q (%v, %s)", out, err, stderr)
			}
			leftovers = append(leftovers[:0], pid)
			startup := filepath.Join(home, "startup.pid") // written by the startup script, in its HOME
			deadline := time.Now().Add(30 * time.Second)
			for pidFile(t, startup) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if pid := pidFile(t, startup); pid == 0 || !tfprovidertest.ProcessAlive(pid) {
				t.Fatalf("the startup script's background job (pid %d) is not running", pid)
			} else {
				leftovers = append(leftovers, pid)
			}
			os.Remove(startup)
			checkListeningPort(t, filepath.Join(home, "listen.port"))
		},
		stopped: func(t *testing.T, ws store.Workspace) {
			if _, err := os.Stat(filepath.Join(wsDir(ws), "agent.pid")); !os.IsNotExist(err) {
				t.Errorf("agent.pid after stop: %v", err)
			}
			if _, err := os.Stat(filepath.Join(wsDir(ws), "home")); err != nil {
				t.Errorf("the workspace's home after stop: %v", err)
			}
			for _, pid := range leftovers {
				if tfprovidertest.ProcessAlive(pid) {
					t.Errorf("process %d the workspace started still runs after stop", pid)
				}
			}
		},
		deleted: func(t *testing.T, ws store.Workspace) {
			if _, err := os.Stat(wsDir(ws)); !os.IsNotExist(err) {
				t.Errorf("workspace directory after delete: %v", err)
			}
			for _, pid := range leftovers {
				if tfprovidertest.ProcessAlive(pid) {
					t.Errorf("process %d the workspace started still runs after delete", pid)
				}
			}
		},
		cleanup: func(ws store.Workspace) {
			killLocalAgent(wsDir(ws))
			for _, pid := range leftovers {
				if p, err := os.FindProcess(pid); err == nil {
					p.Kill()
				}
			}
		},
	})
}

func mustUser(t *testing.T, st *store.Store, name string) store.User {
	t.Helper()
	u, err := st.UserByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func logText(logs []client.BuildLog) string {
	var b strings.Builder
	for _, l := range logs {
		b.WriteString(l.Output + "\n")
	}
	return b.String()
}

// pidFile reads a PID file; 0 if there is none.
func pidFile(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pid
}

// killLocalAgent kills a local template agent left by a failed test.
func killLocalAgent(dir string) {
	if b, err := os.ReadFile(filepath.Join(dir, "agent.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			if p, err := os.FindProcess(pid); err == nil {
				p.Kill()
			}
		}
	}
}

// checkListeningPort waits for the port the startup script's listener
// wrote to file to show in `show dev` (and its JSON), and in port-forward's
// completion of --tcp.
func checkListeningPort(t *testing.T, file string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	port := pidFile(t, file)
	for ; port == 0 && time.Now().Before(deadline); port = pidFile(t, file) {
		time.Sleep(20 * time.Millisecond)
	}
	os.Remove(file)
	if port == 0 {
		t.Fatal("the startup script's listener did not start")
	}
	want := fmt.Sprintf(`^  Ports:\s+.*\b%d \S+ \(127\.0\.0\.1\)`, port)
	var out string
	for out, _ = mustRun(t, "", "show", "dev"); !regexpLine(out, want) && time.Now().Before(deadline); out, _ = mustRun(t, "", "show", "dev") {
		time.Sleep(200 * time.Millisecond)
	}
	if !regexpLine(out, want) {
		t.Fatalf("show lacks the listening port %d:\n%s", port, out)
	}
	out, _ = mustRun(t, "", "show", "dev", "-o", "json")
	var ws client.Workspace
	if err := json.Unmarshal([]byte(out), &ws); err != nil || len(ws.Agents) != 1 ||
		!slices.ContainsFunc(ws.Agents[0].ListeningPorts, func(p client.ListeningPort) bool { return p.Port == port }) {
		t.Errorf("show -o json lacks port %d: %v\n%s", port, err, out)
	}
	out, _ = mustRun(t, "", "__complete", "port-forward", "dev", "--tcp", "")
	if !regexpLine(out, fmt.Sprintf(`^%d:%d\t`, port, port)) {
		t.Errorf("port-forward --tcp completion lacks %d:%d:\n%s", port, port, out)
	}
}

// TestListenerProcess is not a test: a startup script runs it to listen
// on a loopback port (written to $DEVMESH_TEST_LISTEN_FILE) until killed.
func TestListenerProcess(t *testing.T) {
	file := os.Getenv("DEVMESH_TEST_LISTEN_FILE")
	if file == "" {
		t.Skip("helper process for TestLocalTemplateFlow")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Exit(1)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	if err := os.WriteFile(file+".tmp", []byte(port+"\n"), 0o600); err != nil || os.Rename(file+".tmp", file) != nil {
		os.Exit(1)
	}
	for {
		time.Sleep(time.Hour)
	}
}
