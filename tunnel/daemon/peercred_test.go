//go:build linux

package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envChild makes the test binary a client of the socket it names, run
// as another user by TestOtherUserRefused.
const envChild = "DEVMESH_DAEMON_TEST_CHILD_SOCKET"

func TestMain(m *testing.M) {
	if path := os.Getenv(envChild); path != "" {
		c := NewClient(path)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := c.Status(ctx)
		fmt.Printf("uid %d: %v\n", os.Getuid(), err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveAPI serves the daemon's handler (no node: only the credential
// check and unknown paths are exercised) on a socket in dir.
func serveAPI(t *testing.T, dir string) string {
	t.Helper()
	d := &Daemon{log: slog.New(slog.DiscardHandler), peers: newPeerTable()}
	path := filepath.Join(dir, "d.sock")
	ln, err := listenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: d.handler(), ConnContext: withPeerUID}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return path
}

// asNobody runs the test binary as a client of socket with uid and gid
// 65534 (nobody) and returns what it printed.
func asNobody(t *testing.T, socket string) string {
	t.Helper()
	// The test binary's own directory is private: copy it somewhere
	// nobody may execute it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(filepath.Dir(socket), "child.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = []string{envChild + "=" + socket}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Stderr = io.Discard
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func TestOtherUserRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: runs a client as another user")
	}
	dir, err := os.MkdirTemp("", "dmpc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sockDir := filepath.Join(dir, "run")
	socket := serveAPI(t, sockDir)

	// As made: the socket (0600, root's) keeps others out.
	if fi, _ := os.Stat(sockDir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("socket directory mode %v", fi.Mode().Perm())
	}
	os.Chmod(sockDir, 0o755) // only the socket's own mode now
	if out := asNobody(t, socket); !strings.Contains(out, "not accessible") {
		t.Fatalf("another user on the 0600 socket: %s", out)
	}
	// Loosened by mistake: the peer credential check still refuses.
	os.Chmod(socket, 0o666)
	if out := asNobody(t, socket); !strings.Contains(out, "uid 65534 may not use the devmesh daemon of uid 0") {
		t.Fatalf("another user on a world-writable socket: %s", out)
	}
	// The same user (root) passes the check: an unknown path is 404,
	// not 403.
	c := NewClient(socket)
	defer c.Close()
	err = c.do(t.Context(), http.MethodGet, "/v1/nope", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "is not part of the daemon's API") {
		t.Fatalf("same user: %v", err)
	}
}
