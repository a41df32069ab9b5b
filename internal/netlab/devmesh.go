//go:build linux

package netlab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvBin names a prebuilt devmesh binary for the lab to run instead of
// building one.
const EnvBin = "DEVMESH_BIN"

// BuildTags are the tags the Makefile builds devmesh with: the lab builds
// the same binary.
const BuildTags = "ts_debug_websockets"

var (
	binOnce sync.Once
	binPath string
	binDir  string
	binErr  error
)

// Binary returns the devmesh executable the lab runs: $DEVMESH_BIN, or
// one built (once per test binary) from this module into a temporary
// directory that Main removes.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv(EnvBin); p != "" {
			binPath = p
			return
		}
		if binDir, binErr = os.MkdirTemp("", "netlab-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "devmesh")
		out, err := exec.Command("go", "build", "-tags", BuildTags, "-o", binPath, "github.com/devmesh/devmesh/cmd/devmesh").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build devmesh: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// Main runs the tests and removes the binary Binary built. Call it from
// TestMain. Started by StartProxy, the test binary serves the proxy
// instead.
func Main(m *testing.M) {
	serveProxyFromEnv()
	code := m.Run()
	PrintTable(os.Stdout)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// Coordinator is `devmesh server` running on a public host.
type Coordinator struct {
	Host *Host
	Proc *Proc
	URL  string // the access URL
	dir  string
	args []string
	env  []string
}

// CoordinatorOptions adjusts StartCoordinator.
type CoordinatorOptions struct {
	// AccessURL overrides http://ADDR:8080 (a proxy in front, say).
	AccessURL string
	// ExtraArgs are appended to the server's flags.
	ExtraArgs []string
	// TLS serves with a certificate for the host's address from a CA of
	// the lab's own, trusted by every process the lab starts
	// (SSL_CERT_FILE); the access URL is then https://ADDR:8080.
	TLS bool
	// Env is added to the server's environment.
	Env []string
}

// StartCoordinator runs `devmesh server` on h, listening on its address
// port 8080 (HTTP, TLS, DERP) and 3478 (STUN), without provisioning, and
// waits until it serves.
func StartCoordinator(t testing.TB, h *Host, o CoordinatorOptions) *Coordinator {
	t.Helper()
	dir := t.TempDir()
	c := &Coordinator{Host: h, dir: dir, URL: o.AccessURL, env: o.Env}
	scheme := "http"
	if o.TLS {
		scheme = "https"
	}
	if c.URL == "" {
		c.URL = fmt.Sprintf("%s://%s:8080", scheme, h.Addr)
	}
	c.args = []string{"server", "--data-dir", filepath.Join(dir, "data"),
		"--listen", h.Addr.String() + ":8080", "--access-url", c.URL,
		"--stun-listen", h.Addr.String() + ":3478", "--disable-provisioning"}
	if o.TLS {
		cert, key := h.lab.certFor(h.Addr)
		c.args = append(c.args, "--tls-cert", cert, "--tls-key", key)
	}
	c.args = append(c.args, o.ExtraArgs...)
	c.Start(t)
	return c
}

// Start (re)starts the server process with the same data directory.
func (c *Coordinator) Start(t testing.TB) {
	t.Helper()
	c.Proc = c.Host.Start(c.dir, "server", c.env, Binary(t), c.args...)
	if err := c.Proc.WaitLog("devmesh coordinator is running", 60*time.Second); err != nil {
		t.Fatalf("devmesh server: %v\n%s", err, c.Proc.Output())
	}
}

// CLI runs devmesh commands on a host with a configuration directory of
// its own (one logged-in user).
type CLI struct {
	Host *Host
	Dir  string   // DEVMESH_CONFIG_DIR
	Env  []string // added to every command's environment
	t    testing.TB
}

// NewCLI makes a CLI on h with an empty configuration directory.
func NewCLI(t testing.TB, h *Host) *CLI {
	return &CLI{Host: h, Dir: t.TempDir(), t: t}
}

// Command returns the command for `devmesh args...` on the CLI's host.
func (c *CLI) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := c.Host.Command(ctx, Binary(c.t), args...)
	cmd.Env = append(cmd.Env, "DEVMESH_CONFIG_DIR="+c.Dir)
	cmd.Env = append(cmd.Env, c.Env...)
	return cmd
}

// Run runs `devmesh args...` with stdin and a timeout, returning stdout
// and stderr.
func (c *CLI) Run(timeout time.Duration, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := c.Command(ctx, args...)
	var o, e bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &o, &e
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %s)", err, timeout)
	}
	return o.String(), e.String(), err
}

// Must runs `devmesh args...` and fails the test if it fails.
func (c *CLI) Must(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.Run(2*time.Minute, nil, args...)
	if err != nil {
		c.t.Fatalf("devmesh %s on %s: %v\n%s%s", strings.Join(args, " "), c.Host.NS, err, out, errOut)
	}
	return out
}

// Login logs the CLI in as user (the first login on a fresh coordinator
// creates the admin).
func (c *CLI) Login(url, user, password string) {
	c.t.Helper()
	out, errOut, err := c.Run(time.Minute, strings.NewReader(password+"\n"), "login", url, "--username", user, "--password-stdin")
	if err != nil {
		c.t.Fatalf("devmesh login on %s: %v\n%s%s", c.Host.NS, err, out, errOut)
	}
}

// CreateExternal creates an external workspace and returns its agent
// token.
func (c *CLI) CreateExternal(ws string) string {
	c.t.Helper()
	out := strings.TrimSpace(c.Must("create", ws, "--external"))
	lines := strings.Split(out, "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// Agent is `devmesh agent` running on a host.
type Agent struct {
	Host     *Host
	Proc     *Proc
	Env      []string // added to the agent's environment at each Start
	dir, url string
	token    string
}

// StartAgent runs `devmesh agent` on h for the workspace whose token is
// given. The state directory survives Restart.
func StartAgent(t testing.TB, h *Host, url, token string, env ...string) *Agent {
	t.Helper()
	a := &Agent{Host: h, dir: t.TempDir(), url: url, token: token, Env: env}
	a.Start(t)
	return a
}

// Start (re)starts the agent process.
func (a *Agent) Start(t testing.TB) {
	t.Helper()
	env := append([]string{"DEVMESH_URL=" + a.url, "DEVMESH_AGENT_TOKEN=" + a.token}, a.Env...)
	// /bin/sh, not root's login shell: bash run with SSH_CLIENT set (by
	// OpenSSH and by the agent alike) sources ~/.bashrc even for `bash
	// -c`, and a heavy one (pyenv init: about 0.5 s on the lab machine)
	// would be measured instead of devmesh.
	a.Proc = a.Host.Start(a.dir, "agent", env, Binary(t), "agent", "--verbose", "--shell", "/bin/sh", "--state-dir", filepath.Join(a.dir, "state"))
}

// StartDaemon runs `devmesh daemon` for the CLI's user on its host, with
// its socket where the CLI's later commands look for it (they go through
// it from then on), and waits until it serves.
func (c *CLI) StartDaemon() *Proc {
	c.t.Helper()
	dir := c.t.TempDir()
	c.Env = append(c.Env, "XDG_RUNTIME_DIR="+dir)
	env := append([]string{"DEVMESH_CONFIG_DIR=" + c.Dir}, c.Env...)
	p := c.Host.Start(dir, "daemon", env, Binary(c.t), "daemon", "--debug", "--state-dir", filepath.Join(dir, "state"))
	sock := filepath.Join(dir, "devmesh", "daemon.sock")
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			return p
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("devmesh daemon made no socket %s:\n%s", sock, p.Output())
		}
	}
}
