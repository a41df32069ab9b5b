//go:build unix

package sshd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// testServer is a Server listening on loopback, with a known_hosts file
// that makes the OpenSSH client trust it and nothing else.
type testServer struct {
	srv        *Server
	signer     gossh.Signer
	addr       string // host:port
	port       string
	knownHosts string
	dir        string // the sessions' working directory
}

// newTestServer starts a server; modify adjusts its options. Cleanup
// closes it and fails the test if any of its goroutines survive.
func newTestServer(t *testing.T, modify func(*Options)) *testServer {
	t.Helper()
	before := goroutineIDs()
	signer := newSigner(t)
	logw := &testLogWriter{t: t}
	opts := Options{
		HostSigner: signer,
		Authorize:  AllowAll,
		Logger:     slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Dir:        t.TempDir(),
	}
	if modify != nil {
		modify(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	ts := &testServer{srv: srv, signer: signer, addr: ln.Addr().String(), dir: opts.Dir}
	_, ts.port, _ = net.SplitHostPort(ts.addr)
	ts.knownHosts = filepath.Join(t.TempDir(), "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%s %s", ts.port, gossh.MarshalAuthorizedKey(signer.PublicKey()))
	if err := os.WriteFile(ts.knownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		start := time.Now()
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if d := time.Since(start); d > closeTimeout+time.Second {
			t.Errorf("Close took %v", d)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		logw.stop()
		checkNoLeaks(t, before)
	})
	return ts
}

func newSigner(t *testing.T) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sshOpts are the OpenSSH client options of every test: no user or
// system configuration, and only the test server's host key trusted.
func (ts *testServer) sshOpts() []string {
	return []string{
		"-F", "/dev/null",
		"-o", "UserKnownHostsFile=" + ts.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
	}
}

// command builds an OpenSSH client command (ssh, sftp or scp) for the
// test server, killed after 30s so that a failure cannot hang the test.
// ssh takes the port as -p, sftp and scp as -P.
func (ts *testServer) command(t *testing.T, tool string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	path := requireTool(t, tool)
	portFlag := "-P"
	if tool == "ssh" {
		portFlag = "-p"
	}
	all := append(ts.sshOpts(), portFlag, ts.port)
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "LogLevel=") }) {
		// Quiet by default, so that stderr holds only the remote's.
		all = append(all, "-o", "LogLevel=ERROR")
	}
	cmd := exec.CommandContext(ctx, path, append(all, args...)...)
	cmd.Env = withoutEnv(os.Environ(), "SSH_AUTH_SOCK")
	return cmd
}

// run runs ssh with args and returns stdout, stderr and the exit code.
func (ts *testServer) run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := ts.command(t, "ssh", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("ssh %q: %v", args, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// client connects with the Go SSH client, for checks OpenSSH cannot make.
func (ts *testServer) client(t *testing.T) *gossh.Client {
	t.Helper()
	c, err := gossh.Dial("tcp", ts.addr, &gossh.ClientConfig{
		User:            "test",
		HostKeyCallback: gossh.FixedHostKey(ts.signer.PublicKey()),
		Timeout:         5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("OpenSSH %s not installed (%v); install openssh-client to run this test", name, err)
	}
	return path
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func withoutEnv(env []string, key string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processGone reports whether pid no longer exists (a zombie counts as
// alive: the server must reap what it starts).
func processGone(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return errors.Is(err, os.ErrNotExist)
}

// fileGone reports whether path does not exist.
func fileGone(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, os.ErrNotExist)
}

// leakFrame matches a stack frame in the server's code or its SSH and
// SFTP libraries; test files do not match.
var leakFrame = regexp.MustCompile(`/agent/sshd/[a-z]+\.go:|golang\.org/x/crypto/ssh\.|github\.com/pkg/sftp\.`)

func goroutineIDs() map[string]bool {
	ids := map[string]bool{}
	for _, g := range goroutines() {
		ids[strings.Fields(g)[1]] = true
	}
	return ids
}

func goroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(string(buf[:n]), "\n\n")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// checkNoLeaks fails t if goroutines started since before still run
// server or SSH library code a few seconds after Close.
func checkNoLeaks(t *testing.T, before map[string]bool) {
	t.Helper()
	var leaked []string
	deadline := time.Now().Add(3 * time.Second)
	for {
		leaked = leaked[:0]
		for _, g := range goroutines() {
			if !before[strings.Fields(g)[1]] && leakFrame.MatchString(g) {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, g := range leaked {
		t.Errorf("leaked goroutine:\n%s", g)
	}
}

// testLogWriter sends server logs to t.Log until the test is over.
type testLogWriter struct {
	t       *testing.T
	mu      sync.Mutex
	stopped bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
