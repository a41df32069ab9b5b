package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/api"
	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/builds"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/cliconfig"
	"github.com/devmesh/devmesh/node"
	"github.com/devmesh/devmesh/provision"
)

// useConfig switches the CLI to the credentials in dir.
func useConfig(t *testing.T, dir string) { t.Setenv(cliconfig.EnvDir, dir) }

func TestCLIUsersDisableEnableDelete(t *testing.T) {
	adminDir := cliEnv(t)
	srv := apitest.New(t)
	mustRun(t, cliAdminPW+"\n", "login", srv.URL, "--username", "alice", "--password-stdin")
	mustRun(t, "bob-password\n", "users", "create", "bob", "--password-stdin")
	bobDir := filepath.Join(t.TempDir(), "bob")
	useConfig(t, bobDir)
	mustRun(t, "bob-password\n", "login", srv.URL, "--username", "bob", "--password-stdin")

	useConfig(t, adminDir)
	stdout, _ := mustRun(t, "", "users", "disable", "bob")
	if stdout != "Disabled user bob.\n" {
		t.Fatalf("users disable = %q", stdout)
	}
	stdout, _ = mustRun(t, "", "users", "list")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "STATUS") || !strings.Contains(lines[1], "active") || !strings.Contains(lines[2], "disabled") {
		t.Fatalf("users list:\n%s", stdout)
	}
	stdout, _ = mustRun(t, "", "users", "list", "-o", "json")
	var users []client.User
	if err := json.Unmarshal([]byte(stdout), &users); err != nil || len(users) != 2 || users[1].Status != client.UserDisabled || users[1].DisabledAt.IsZero() {
		t.Fatalf("users list -o json = %q (%v)", stdout, err)
	}

	// Bob's stored session stops working at once, with a clear message.
	useConfig(t, bobDir)
	_, _, err := runCLI(t, "", "whoami")
	if client.ErrorCode(err) != client.CodeAccountDisabled || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("bob's whoami while disabled: %v", err)
	}
	_, _, err = runCLI(t, "bob-password\n", "login", srv.URL, "--username", "bob", "--password-stdin")
	if client.ErrorCode(err) != client.CodeAccountDisabled {
		t.Fatalf("bob's login while disabled: %v", err)
	}

	useConfig(t, adminDir)
	for _, args := range [][]string{{"users", "disable", "alice"}, {"users", "delete", "alice"}} {
		_, _, err = runCLI(t, "", args...)
		if client.ErrorCode(err) != client.CodeLastAdmin || !strings.Contains(err.Error(), "your own account") {
			t.Fatalf("%v: %v", args, err)
		}
	}
	if stdout, _ = mustRun(t, "", "users", "enable", "bob"); stdout != "Enabled user bob.\n" {
		t.Fatalf("users enable = %q", stdout)
	}
	useConfig(t, bobDir)
	if stdout, _ = mustRun(t, "", "whoami"); !strings.HasPrefix(stdout, "bob (member)") {
		t.Fatalf("bob's whoami after enable = %q", stdout)
	}

	useConfig(t, adminDir)
	if stdout, _ = mustRun(t, "", "users", "revoke-sessions", "bob"); stdout != "Revoked 1 sessions of bob.\n" {
		t.Fatalf("revoke-sessions = %q", stdout)
	}
	useConfig(t, bobDir)
	if _, _, err = runCLI(t, "", "whoami"); client.ErrorCode(err) != client.CodeUnauthorized {
		t.Fatalf("bob's whoami after revoke-sessions: %v", err)
	}
	mustRun(t, "bob-password\n", "login", srv.URL, "--username", "bob", "--password-stdin")
	mustRun(t, "", "create", "box", "--external")

	useConfig(t, adminDir)
	_, _, err = runCLI(t, "", "users", "delete", "bob")
	if client.ErrorCode(err) != client.CodeUserHasWorkspaces || !strings.Contains(err.Error(), "delete them first") {
		t.Fatalf("delete a user with a workspace: %v", err)
	}
	useConfig(t, bobDir)
	mustRun(t, "", "delete", "box")
	useConfig(t, adminDir)
	if stdout, _ = mustRun(t, "", "users", "delete", "bob"); stdout != "Deleted user bob.\n" {
		t.Fatalf("users delete = %q", stdout)
	}
	if _, _, err = runCLI(t, "", "users", "delete", "bob"); client.ErrorCode(err) != client.CodeNotFound {
		t.Fatalf("delete again: %v", err)
	}
}

// TestCLIStartWhileQueued: a second start while one is queued fails with
// the 409 and a message that says what to do.
func TestCLIStartWhileQueued(t *testing.T) {
	cliEnv(t)
	srv := apitest.New(t, func(o *api.Options) {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		r, err := provision.New(provision.Options{WorkRoot: t.TempDir(), DevmeshBinary: self})
		if err != nil {
			t.Skipf("needs terraform for the build queue: %v", err)
		}
		// Never started: builds stay queued.
		if o.Builds, err = builds.New(builds.Options{Store: o.Store, Runner: r, AccessURL: "http://127.0.0.1:1"}); err != nil {
			t.Fatal(err)
		}
	})
	mustRun(t, cliAdminPW+"\n", "login", srv.URL, "--username", "alice", "--password-stdin")
	if _, _, err := srv.Store.PushTemplateVersion(context.Background(), "base",
		store.TemplateVersion{Archive: []byte("x"), ArchiveHash: "x", Variables: "[]", CreatedBy: 1}); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "", "create", "dev", "--template", "base", "--no-wait")
	_, _, err := runCLI(t, "", "start", "dev", "--no-wait")
	if client.ErrorCode(err) != client.CodeBuildInProgress ||
		!strings.Contains(err.Error(), `workspace "dev" already has build #1 (start) pending`) ||
		!strings.Contains(err.Error(), "devmesh cancel dev --build 1") {
		t.Fatalf("second start: %v", err)
	}
}

// TestCLIDisableDropsNodes: disabling a user takes their real tailnet
// nodes off the tailnet within seconds (their netmap loses its peers), and
// their auth key registers nothing new until they are enabled again.
func TestCLIDisableDropsNodes(t *testing.T) {
	cliEnv(t)
	c := coordtest.Start(t, coordtest.WithoutProvisioning())
	mustRun(t, cliAdminPW+"\n", "login", c.URL(), "--username", "alice", "--password-stdin")
	mustRun(t, "bob-password\n", "users", "create", "bob", "--password-stdin")
	ctx := context.Background()
	bob, err := c.Store().UserByName(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	key := c.AuthKey(t, bob, true, false)
	start := func(host string) (*node.Node, error) {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return node.Start(sctx, node.Options{ControlURL: c.URL(), AuthKey: key, Dir: filepath.Join(t.TempDir(), host), Hostname: host})
	}
	laptop, err := start("laptop")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { laptop.Close() })
	desk, err := start("desk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { desk.Close() })
	peers := func(n *node.Node) int {
		st, err := n.Status(ctx)
		if err != nil || st.BackendState != "Running" {
			return 0
		}
		return len(st.Peer)
	}
	ping := func(from, to *node.Node) error {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		v4, _ := to.Addrs()
		_, err := from.Ping(pctx, v4)
		return err
	}
	waitFor(t, 30*time.Second, "bob's nodes see each other", func() bool { return peers(laptop) == 1 && peers(desk) == 1 })
	// The first disco ping can take longer than one try under load; what
	// matters is that it works before and not after.
	waitFor(t, 30*time.Second, "laptop pings desk before the disable", func() bool { return ping(laptop, desk) == nil })

	began := time.Now()
	mustRun(t, "", "users", "disable", "bob")
	// Both are logged out (their keys expired) over their map streams.
	waitFor(t, 10*time.Second, "both nodes lose their peer", func() bool { return peers(laptop) == 0 && peers(desk) == 0 })
	t.Logf("measured: bob's nodes were logged out %v after the disable command began", time.Since(began).Round(time.Millisecond))
	if err := ping(laptop, desk); err == nil {
		t.Fatal("laptop still reaches desk after the disable")
	}
	if err := ping(desk, laptop); err == nil {
		t.Fatal("desk still reaches laptop after the disable")
	}
	for _, n := range c.Control().Registry().Nodes(bob.ID) {
		if !n.Expired(time.Now()) || c.Control().AdmitNodeKey(n.NodeKey) {
			t.Fatalf("bob's node %s is still valid or admitted by DERP", n.Hostname)
		}
	}
	if _, err := start("phone"); err == nil {
		t.Fatal("a disabled user's auth key registered a node")
	}

	mustRun(t, "", "users", "enable", "bob")
	phone, err := start("phone")
	if err != nil {
		t.Fatalf("auth key after enable: %v", err)
	}
	phone.Close()
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServerQuotaFlags(t *testing.T) {
	cliEnv(t)
	_, _, err := runCLI(t, "", "server", "--data-dir", t.TempDir(), "--max-workspaces-per-user", "-1")
	if err == nil || !strings.Contains(err.Error(), "--max-workspaces-per-user") {
		t.Fatalf("negative quota: %v", err)
	}
	cmd := newServerCmd()
	for flag, want := range map[string]string{"max-workspaces-per-user": "50", "max-external-agents-per-user": "20"} {
		if f := cmd.Flags().Lookup(flag); f == nil || f.DefValue != want {
			t.Errorf("--%s: %+v, want default %s", flag, f, want)
		}
	}
}
