package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/tunnel/daemon"
)

// cliDaemon is `devmesh daemon` run in-process.
type cliDaemon struct {
	stop   context.CancelFunc
	done   chan error
	stderr *bytes.Buffer // read only after done
	socket string
}

// startCLIDaemon runs `devmesh daemon` with the current environment
// (login, state directory, socket) and waits until its socket answers.
func startCLIDaemon(t *testing.T) *cliDaemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &cliDaemon{stop: cancel, done: make(chan error, 1), stderr: new(bytes.Buffer), socket: os.Getenv(daemon.EnvSocket)}
	root := newRootCmd()
	root.SetArgs([]string{"daemon"})
	root.SetOut(new(bytes.Buffer))
	root.SetErr(d.stderr)
	go func() { d.done <- root.ExecuteContext(ctx) }()
	c := daemon.NewClient(d.socket)
	defer c.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := c.Status(t.Context()); err == nil {
			break
		}
		select {
		case err := <-d.done:
			cancel()
			t.Fatalf("devmesh daemon exited: %v\n%s", err, d.stderr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("devmesh daemon did not answer within 60s")
		}
	}
	t.Cleanup(func() { d.close(t) })
	return d
}

// close stops the daemon and fails the test if it ended with an error.
func (d *cliDaemon) close(t *testing.T) {
	if d.done == nil {
		return
	}
	d.stop()
	if err := <-d.done; err != nil {
		t.Errorf("devmesh daemon: %v", err)
	}
	d.done = nil
}

// shortDaemonEnv points the CLI at a short socket path (Unix socket paths
// are limited to ~100 bytes).
func shortDaemonEnv(t *testing.T) {
	dir, err := os.MkdirTemp("", "dmcli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	t.Setenv(daemon.EnvSocket, filepath.Join(dir, "d.sock"))
	t.Setenv(daemon.EnvStateDir, filepath.Join(dir, "state"))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// timeSSH runs `devmesh ssh -v [extra] dev -- true` n times and returns
// each run's duration, and its connect time: until the SSH connection
// was up, as -v reports it (the rest is the remote command's run).
func timeSSH(t *testing.T, n int, extra ...string) (total, connect []time.Duration) {
	t.Helper()
	for range n {
		start := time.Now()
		args := append(append([]string{"ssh", "-v"}, extra...), "dev", "--", "true")
		_, stderr, err := runCLI(t, "", args...)
		if err != nil {
			t.Fatalf("devmesh %v: %v\n%s", args, err, stderr)
		}
		total = append(total, time.Since(start))
		m := connectedRE.FindStringSubmatch(stderr)
		if m == nil {
			t.Fatalf("no connect time in -v output:\n%s", stderr)
		}
		secs, _ := strconv.ParseFloat(m[1], 64)
		connect = append(connect, time.Duration(secs*float64(time.Second)))
	}
	return total, connect
}

var connectedRE = regexp.MustCompile(`\[\s*([0-9.]+)s\] Connected`)

// TestDaemonCLI: ssh through the daemon is at least twice as fast as
// with a node per command; the daemon follows new workspaces; bad
// starts fail clearly.
func TestDaemonCLI(t *testing.T) {
	w := newE2EWorld(t)
	shortDaemonEnv(t)
	w.createWorkspace("dev", true)
	d := startCLIDaemon(t)

	// Which path: -v says.
	_, stderr, err := runCLI(t, "", "ssh", "-v", "dev", "--", "true")
	if err != nil || !strings.Contains(stderr, "Using the devmesh daemon") {
		t.Fatalf("ssh -v through the daemon: %v\n%s", err, stderr)
	}
	_, stderr, err = runCLI(t, "", "ssh", "-v", "--no-daemon", "dev", "--", "true")
	if err != nil || !strings.Contains(stderr, "Not using the daemon (--no-daemon)") {
		t.Fatalf("ssh -v --no-daemon: %v\n%s", err, stderr)
	}

	// The whole command includes the remote command's run on the agent,
	// the same on both paths (and slow on a loaded machine: process
	// creation); the connect time is what the daemon saves.
	const runs = 10
	coldTotal, coldConnect := timeSSH(t, runs, "--no-daemon")
	warmTotal, warmConnect := timeSSH(t, runs)
	ct, wt, cc, wc := median(coldTotal), median(warmTotal), median(coldConnect), median(warmConnect)
	t.Logf("devmesh ssh dev -- true, median of %d: in-process node %v (connected after %v), through the daemon %v (connected after %v): %.1fx overall",
		runs, ct.Round(time.Millisecond), cc, wt.Round(time.Millisecond), wc, float64(ct)/float64(wt))
	if wc > cc/2 || wt >= ct {
		t.Errorf("through the daemon %v (connect %v), cold %v (connect %v): want the connect time at most half, and the whole faster", wt, wc, ct, cc)
	}

	t.Run("Status", func(t *testing.T) {
		out, _, err := runCLI(t, "", "daemon", "status", "-o", "json")
		var st daemon.Status
		if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.User != "alice" || len(st.Peers) != 1 {
			t.Fatalf("daemon status: %v\n%s", err, out)
		}
	})
	t.Run("NewWorkspace", func(t *testing.T) {
		ws := w.createWorkspace("late", true) // returns once the API shows the agent connected
		start := time.Now()
		_, stderr, err := runCLI(t, "", "ssh", "late", "--", "true")
		if err != nil {
			t.Fatalf("ssh to a workspace created while the daemon runs: %v\n%s", err, stderr)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("reachable only after %v", d)
		}
		t.Logf("new workspace reachable through the daemon %v after its agent connected", time.Since(start).Round(time.Millisecond))
		// Deleted: it leaves the daemon's netmap.
		addr := ws.agent.Addr
		if _, err := w.alice.DeleteWorkspace(t.Context(), "late"); err != nil {
			t.Fatal(err)
		}
		c := daemon.NewClient(d.socket)
		defer c.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		err = c.Events(ctx, func(ev daemon.Event) {
			for _, p := range ev.Peers {
				if slices.Contains(p.Addrs, addr) {
					return
				}
			}
			cancel()
		})
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("the deleted workspace's agent stayed in the daemon's netmap: %v", err)
		}
	})
	t.Run("AlreadyRunning", func(t *testing.T) {
		_, _, err := runCLI(t, "", "daemon")
		if !errors.Is(err, daemon.ErrAlreadyRunning) {
			t.Fatalf("second daemon: %v", err)
		}
	})

	d.close(t)
	// A stale socket: the commands fall back, and say why with -v.
	ln, err := net.Listen("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	_, stderr, err = runCLI(t, "", "ssh", "-v", "dev", "--", "true")
	if err != nil || !strings.Contains(stderr, "is stale") || !strings.Contains(stderr, "starting an in-process node") {
		t.Fatalf("ssh with a stale daemon socket: %v\n%s", err, stderr)
	}
	// The daemon itself clears it and starts.
	startCLIDaemon(t)
	if _, stderr, err = runCLI(t, "", "ssh", "-v", "dev", "--", "true"); err != nil || !strings.Contains(stderr, "Using the devmesh daemon") {
		t.Fatalf("ssh after the daemon replaced a stale socket: %v\n%s", err, stderr)
	}
}

func TestDaemonCLIBadStart(t *testing.T) {
	w := newE2EWorld(t)
	shortDaemonEnv(t)
	w.as("dmtok_not-a-valid-token")
	_, _, err := runCLI(t, "", "daemon")
	if err == nil || !strings.Contains(err.Error(), "expired or was revoked") {
		t.Fatalf("daemon with a revoked login: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	t.Setenv("DEVMESH_URL", dead)
	t.Setenv("DEVMESH_TOKEN", w.aliceTok)
	_, _, err = runCLI(t, "", "daemon")
	if err == nil || !strings.Contains(err.Error(), "cannot reach the coordinator at "+dead) {
		t.Fatalf("daemon with the coordinator down: %v", err)
	}
}
