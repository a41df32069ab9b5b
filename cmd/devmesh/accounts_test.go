package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"tailscale.com/tailcfg"
	"tailscale.com/types/key"

	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/control"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/cliconfig"
	"github.com/devmesh/devmesh/internal/secret"
)

const cliAdminPW = "cli-admin-password"

// cliEnv isolates a CLI test: its own config dir and none of the
// DEVMESH_* variables that would change what commands do.
func cliEnv(t *testing.T) string {
	t.Helper()
	for _, k := range []string{cliconfig.EnvToken, cliconfig.EnvURL, "DEVMESH_USERNAME", "DEVMESH_PASSWORD_STDIN", "DEVMESH_OUTPUT"} {
		t.Setenv(k, "") // restores the old value after the test
		os.Unsetenv(k)
	}
	dir := filepath.Join(t.TempDir(), "config")
	t.Setenv(cliconfig.EnvDir, dir)
	// Never reach a daemon of the machine's user: each test says
	// whether it runs one.
	t.Setenv("DEVMESH_NO_DAEMON", "")
	os.Unsetenv("DEVMESH_NO_DAEMON")
	t.Setenv("DEVMESH_STATE_DIR", filepath.Join(filepath.Dir(dir), "state"))
	t.Setenv("DEVMESH_DAEMON_SOCKET", filepath.Join(filepath.Dir(dir), "no-daemon.sock"))
	return dir
}

// runCLI runs the root command in-process, as main does.
func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// mustRun runs the CLI and fails the test on error.
func mustRun(t *testing.T, stdin string, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := runCLI(t, stdin, args...)
	if err != nil {
		t.Fatalf("devmesh %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
	}
	return stdout, stderr
}

// lastLine returns the last line of out and checks it is alone on it.
func lastLine(t *testing.T, out string) string {
	t.Helper()
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("stdout %q does not end in a newline", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestCLILoginBootstrapWhoami(t *testing.T) {
	dir := cliEnv(t)
	srv := apitest.New(t)

	stdout, stderr := mustRun(t, cliAdminPW+"\n", "login", srv.URL, "--username", "alice", "--password-stdin")
	if !strings.Contains(stdout, "Logged in to "+srv.URL+" as alice (admin)") || !strings.Contains(stderr, "first account") {
		t.Fatalf("login output: %q / %q", stdout, stderr)
	}
	fi, err := os.Stat(cliconfig.Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Fatalf("config dir mode %v, want 0700", di.Mode().Perm())
	}
	raw, _ := os.ReadFile(cliconfig.Path(dir))
	if bytes.Contains(raw, []byte(cliAdminPW)) {
		t.Fatal("the password was written to the credentials file")
	}
	creds, err := cliconfig.Load(dir)
	if err != nil || creds.URL != srv.URL || !strings.HasPrefix(creds.Token, "dms_") {
		t.Fatalf("stored credentials %+v, %v", creds, err)
	}

	stdout, _ = mustRun(t, "", "whoami")
	if stdout != "alice (admin) on "+srv.URL+"\n" {
		t.Fatalf("whoami = %q", stdout)
	}
	stdout, _ = mustRun(t, "", "whoami", "-o", "json")
	var me struct {
		URL      string `json:"url"`
		Username string `json:"username"`
		Role     string `json:"role"`
	}
	if err := json.Unmarshal([]byte(stdout), &me); err != nil || me.URL != srv.URL || me.Username != "alice" || me.Role != "admin" {
		t.Fatalf("whoami -o json = %q (%v)", stdout, err)
	}

	// The server now has a user: login logs in instead of bootstrapping,
	// and a wrong password leaves the stored session alone.
	_, _, err = runCLI(t, "wrong-password\n", "login", srv.URL, "--username", "alice", "--password-stdin")
	if client.ErrorCode(err) != client.CodeInvalidCredentials {
		t.Fatalf("login with a wrong password: %v", err)
	}
	if after, _ := cliconfig.Load(dir); after != creds {
		t.Fatal("a failed login changed the stored credentials")
	}
	_, stderr = mustRun(t, cliAdminPW+"\n", "login", srv.URL, "--username", "alice", "--password-stdin")
	if strings.Contains(stderr, "first account") {
		t.Fatalf("second login bootstrapped: %q", stderr)
	}
	if after, _ := cliconfig.Load(dir); after.Token == creds.Token {
		t.Fatal("second login did not store a new session")
	}
}

func TestCLILoginFromEnvAndPromptErrors(t *testing.T) {
	cliEnv(t)
	srv := apitest.New(t)
	srv.Bootstrap(t, "alice", cliAdminPW)

	// No terminal and no --password-stdin: a clear error, no hang.
	_, _, err := runCLI(t, cliAdminPW+"\n", "login", srv.URL, "--username", "alice")
	if err == nil || !strings.Contains(err.Error(), "--password-stdin") {
		t.Fatalf("login without a terminal: %v", err)
	}
	_, _, err = runCLI(t, "", "login", srv.URL, "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), "username") {
		t.Fatalf("login without --username: %v", err)
	}

	t.Setenv("DEVMESH_URL", srv.URL)
	t.Setenv("DEVMESH_USERNAME", "alice")
	t.Setenv("DEVMESH_PASSWORD_STDIN", "true")
	stdout, _ := mustRun(t, cliAdminPW+"\n", "login")
	if !strings.Contains(stdout, "as alice (admin)") {
		t.Fatalf("login from the environment: %q", stdout)
	}
}

func TestCLIAuthKeys(t *testing.T) {
	cliEnv(t)
	srv := apitest.New(t)
	mustRun(t, cliAdminPW+"\n", "login", srv.URL, "--username", "alice", "--password-stdin")

	stdout, stderr := mustRun(t, "", "authkeys", "create", "--reusable", "--expiry", "2h")
	k := lastLine(t, stdout)
	if !strings.HasPrefix(k, "dmkey_") || strings.ContainsAny(k, " \t") {
		t.Fatalf("last line of stdout %q is not a key alone", k)
	}
	if strings.Contains(stderr, k) {
		t.Fatal("the key was printed to stderr too")
	}
	ctx := context.Background()
	stored, err := srv.Store.CheckAuthKey(ctx, secret.Hash(k))
	if err != nil || !stored.Reusable || stored.Ephemeral || time.Until(stored.ExpiresAt) > 2*time.Hour {
		t.Fatalf("stored key %+v, %v", stored, err)
	}

	stdout, _ = mustRun(t, "", "authkeys", "list", "-o", "json")
	var keys []client.AuthKey
	if err := json.Unmarshal([]byte(stdout), &keys); err != nil || len(keys) != 1 || !strings.HasPrefix(k, keys[0].Prefix) {
		t.Fatalf("authkeys list -o json = %q (%v)", stdout, err)
	}
	if strings.Contains(stdout, k) {
		t.Fatal("authkeys list shows the key")
	}
	stdout, _ = mustRun(t, "", "authkeys", "list")
	if !strings.Contains(stdout, keys[0].Prefix) || !strings.Contains(stdout, "valid") {
		t.Fatalf("authkeys list = %q", stdout)
	}

	mustRun(t, "", "authkeys", "revoke", strconv.FormatInt(keys[0].ID, 10))
	if _, err := srv.Store.CheckAuthKey(ctx, secret.Hash(k)); !errors.Is(err, store.ErrAuthKeyRevoked) {
		t.Fatalf("after revoke: %v", err)
	}
	if _, _, err := runCLI(t, "", "authkeys", "revoke", strconv.FormatInt(keys[0].ID, 10)); client.ErrorCode(err) != client.CodeNotFound {
		t.Fatalf("second revoke: %v", err)
	}
}

func TestCLITokensAndEnvToken(t *testing.T) {
	cliEnv(t)
	srv := apitest.New(t)
	mustRun(t, cliAdminPW+"\n", "login", srv.URL, "--username", "alice", "--password-stdin")

	stdout, _ := mustRun(t, "", "tokens", "create", "ci", "--lifetime", "7d")
	tok := lastLine(t, stdout)
	if !strings.HasPrefix(tok, "dmt_") {
		t.Fatalf("token line %q", tok)
	}
	stdout, _ = mustRun(t, "", "tokens", "list")
	if !strings.Contains(stdout, "ci") || strings.Contains(stdout, tok) {
		t.Fatalf("tokens list = %q", stdout)
	}

	// A script with only DEVMESH_URL and DEVMESH_TOKEN (no login).
	cliEnv(t)
	t.Setenv(cliconfig.EnvURL, srv.URL)
	t.Setenv(cliconfig.EnvToken, tok)
	if stdout, _ := mustRun(t, "", "whoami"); !strings.HasPrefix(stdout, "alice (admin)") {
		t.Fatalf("whoami with DEVMESH_TOKEN = %q", stdout)
	}
	mustRun(t, "", "tokens", "delete", "ci")
	if _, _, err := runCLI(t, "", "whoami"); client.ErrorCode(err) != client.CodeUnauthorized {
		t.Fatalf("whoami with a deleted token: %v", err)
	}
}

func TestCLIUsers(t *testing.T) {
	cliEnv(t)
	srv := apitest.New(t)
	mustRun(t, cliAdminPW+"\n", "login", srv.URL, "--username", "alice", "--password-stdin")

	stdout, _ := mustRun(t, "bob-password\n", "users", "create", "bob", "--password-stdin")
	if stdout != "Created user bob (member).\n" {
		t.Fatalf("users create = %q", stdout)
	}
	mustRun(t, "carol-password\n", "users", "create", "carol", "--admin", "--password-stdin")
	stdout, _ = mustRun(t, "", "users", "list", "-o", "json")
	var users []client.User
	if err := json.Unmarshal([]byte(stdout), &users); err != nil || len(users) != 3 ||
		users[1].Username != "bob" || users[1].Role != "member" || users[2].Role != "admin" {
		t.Fatalf("users list = %q (%v)", stdout, err)
	}

	// Bob, a member, may not create users.
	cliEnv(t)
	mustRun(t, "bob-password\n", "login", srv.URL, "--username", "bob", "--password-stdin")
	_, _, err := runCLI(t, "dave-password\n", "users", "create", "dave", "--password-stdin")
	if client.ErrorCode(err) != client.CodeForbidden {
		t.Fatalf("member creating a user: %v", err)
	}
}

func TestCLINodesAndLogout(t *testing.T) {
	dir := cliEnv(t)
	srv := apitest.New(t)
	mustRun(t, cliAdminPW+"\n", "login", srv.URL, "--username", "alice", "--password-stdin")
	creds, _ := cliconfig.Load(dir)

	ctx := context.Background()
	me, err := srv.Client(t, creds.Token).Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mk, nk := key.NewMachine().Public(), key.NewNode().Public()
	sn, _, err := srv.Store.CreateNode(ctx, store.Node{UserID: me.ID, MachineKey: mk.String(), NodeKey: nk.String(),
		Hostname: "desk", GivenName: "desk"}, "", func() (string, string) { return "100.64.0.9", "fd7a:115c:a1e0::9" })
	if err != nil {
		t.Fatal(err)
	}
	srv.Control.Registry().Upsert(&control.Node{ID: tailcfg.NodeID(sn.ID), StableID: tailcfg.StableNodeID(sn.StableID),
		Owner: me.ID, MachineKey: mk, NodeKey: nk, Hostname: "desk", GivenName: "desk",
		Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.9/32"), netip.MustParsePrefix("fd7a:115c:a1e0::9/128")}})

	stdout, _ := mustRun(t, "", "nodes", "list")
	if !strings.Contains(stdout, "desk.alice.devmesh.internal") || !strings.Contains(stdout, "100.64.0.9") {
		t.Fatalf("nodes list = %q", stdout)
	}
	mustRun(t, "", "nodes", "delete", strconv.FormatInt(sn.ID, 10))
	stdout, _ = mustRun(t, "", "nodes", "list", "-o", "json")
	if strings.TrimSpace(stdout) != "[]" {
		t.Fatalf("nodes after delete = %q", stdout)
	}

	mustRun(t, "", "logout")
	if _, err := os.Stat(cliconfig.Path(dir)); !os.IsNotExist(err) {
		t.Fatalf("credentials file after logout: %v", err)
	}
	if _, err := srv.Client(t, creds.Token).Me(ctx); client.ErrorCode(err) != client.CodeUnauthorized {
		t.Fatalf("session still valid after logout: %v", err)
	}
	if _, _, err := runCLI(t, "", "whoami"); !errors.Is(err, cliconfig.ErrNotLoggedIn) {
		t.Fatalf("whoami after logout: %v", err)
	}
	if _, stderr := mustRun(t, "", "logout"); !strings.Contains(stderr, "Not logged in") {
		t.Fatalf("second logout: %q", stderr)
	}
}
