package daemon_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/node"
	"github.com/devmesh/devmesh/tunnel"
	"github.com/devmesh/devmesh/tunnel/daemon"
	"github.com/devmesh/devmesh/tunnel/tunneltest"
)

// world is a coordinator, alice, and a stand-in agent of hers.
type world struct {
	c     *coordtest.Coordinator
	alice store.User
	agent *tunneltest.Agent
	ep    tunnel.Endpoint
}

func newWorld(t *testing.T) *world {
	t.Helper()
	c := coordtest.Start(t)
	w := &world{c: c, alice: c.CreateUser(t, "alice", false)}
	w.agent = tunneltest.StartAgent(t, c, c.AgentAuthKey(t, w.alice, 1))
	w.ep = tunnel.Endpoint{Target: tunnel.Target{Workspace: "dev", Agent: "main"}, Addr: w.agent.Addr, HostKey: w.agent.Signer.PublicKey()}
	return w
}

// running is a daemon started by startDaemon.
type running struct {
	d      *daemon.Daemon
	client *daemon.Client
	stop   func() error // stops the daemon and returns Run's error
	// keys counts the auth keys the daemon asked for.
	keys *atomic.Int32
}

// startDaemon runs a daemon of alice's with state in stateDir and its
// socket at sock, and waits until it serves.
func (w *world) startDaemon(t *testing.T, stateDir, sock string) *running {
	t.Helper()
	r := &running{keys: new(atomic.Int32)}
	d, err := daemon.New(daemon.Options{
		ControlURL: w.c.URL(), StateDir: stateDir, SocketPath: sock, User: "alice", Hostname: "laptop",
		AuthKey: func(context.Context) (string, error) {
			r.keys.Add(1)
			return w.c.AuthKey(t, w.alice, false, false), nil
		},
		Logger: tunneltest.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("daemon did not start within 60s")
	}
	var stopped bool
	var runErr error
	r.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			runErr = <-done
		}
		return runErr
	}
	t.Cleanup(func() { r.stop() })
	r.d, r.client = d, daemon.NewClient(sock)
	t.Cleanup(func() { r.client.Close() })
	return r
}

// sockDir returns a short directory for sockets (paths are limited to
// about 100 bytes).
func sockDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dmd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestDaemon(t *testing.T) {
	w := newWorld(t)
	stateDir := t.TempDir()
	sock := filepath.Join(sockDir(t), "run", "daemon.sock")
	r := w.startDaemon(t, stateDir, sock)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket: %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Dir(sock)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("socket directory: %v, %v", fi.Mode(), err)
	}
	st, err := r.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.APIVersion != daemon.APIVersion || st.User != "alice" || st.ControlURL != w.c.URL() || len(st.Addrs) == 0 || st.PID != os.Getpid() {
		t.Fatalf("status: %+v", st)
	}
	firstAddr := st.Addrs[0]

	t.Run("SSH", func(t *testing.T) {
		c, err := tunnel.DialSSH(ctx, r.client, w.ep, tunnel.SSHOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var out strings.Builder
		st, err := tunnel.RunSession(ctx, c, tunnel.SessionOptions{Command: "echo hi; exit 3", Stdout: &out})
		if err != nil || st.Code != 3 || out.String() != "hi\n" {
			t.Fatalf("session: %+v %q %v", st, out.String(), err)
		}
	})
	t.Run("HalfClose", func(t *testing.T) {
		res, err := tunnel.RunSpeedtest(ctx, mustDial(t, ctx, r.client, w.agent.Addr, tunnel.SpeedtestPort), tunnel.Upload, 300*time.Millisecond, nil)
		if err != nil || res.Bytes == 0 {
			t.Fatalf("upload through the daemon (needs the half-close passed on): %+v, %v", res, err)
		}
	})
	t.Run("Speedtest", func(t *testing.T) {
		res, err := r.client.Speedtest(ctx, w.agent.Addr, tunnel.Download, 300*time.Millisecond)
		if err != nil || res.Bytes == 0 || res.Direction != "download" {
			t.Fatalf("%+v, %v", res, err)
		}
	})
	t.Run("Ping", func(t *testing.T) {
		sum := tunnel.Ping(ctx, r.client, w.agent.Addr, tunnel.PingOptions{Count: 2, Interval: 10 * time.Millisecond}, func(tunnel.PingReply) {})
		if sum.Received != 2 {
			t.Fatalf("%+v", sum)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		// Nothing listens on the agent's port 1: refused, as from a node.
		_, err := r.client.Dial(ctx, "tcp", w.agent.Addr.String()+":1")
		if !node.IsRefused(err) {
			t.Fatalf("dial to a closed port: %v", err)
		}
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, err = r.client.Dial(short, "tcp", "100.100.100.100:22")
		if !errors.Is(err, node.ErrNoPeer) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("dial to a stranger: %v", err)
		}
		if _, err := r.client.Dial(ctx, "tcp", "no-port"); err == nil || !strings.Contains(err.Error(), "bad addr") {
			t.Fatalf("bad addr: %v", err)
		}
	})
	t.Run("LateAgent", func(t *testing.T) {
		// The events stream tells of the new peer; a dial started
		// before the agent exists succeeds once it joins.
		events := make(chan daemon.Event, 16)
		ectx, ecancel := context.WithCancel(ctx)
		defer ecancel()
		go r.client.Events(ectx, func(ev daemon.Event) { events <- ev })
		first := <-events
		late := tunneltest.StartAgent(t, w.c, w.c.AgentAuthKey(t, w.alice, 2))
		joined := time.Now()
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		defer dcancel()
		conn, err := r.client.Dial(dctx, "tcp", netAddr(late.Addr, tunnel.SSHPort))
		if err != nil {
			t.Fatalf("the new agent was not reachable within 5s: %v", err)
		}
		conn.Close()
		t.Logf("new agent reachable %v after it joined", time.Since(joined).Round(time.Millisecond))
		for ev := range events {
			if _, ok := node.FindPeer(ev.Peers, late.Addr.String()); ok {
				if len(ev.Peers) != len(first.Peers)+1 {
					t.Fatalf("peers before %v, after %v", first.Peers, ev.Peers)
				}
				break
			}
		}
	})
	t.Run("CoordinatorRestart", func(t *testing.T) {
		// The daemon reconnects by itself: a peer that joins after the
		// restart reaches it through the new control session.
		w.c.Restart(t)
		after := tunneltest.StartAgent(t, w.c, w.c.AgentAuthKey(t, w.alice, 3))
		dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
		defer dcancel()
		start := time.Now()
		conn, err := r.client.Dial(dctx, "tcp", netAddr(after.Addr, tunnel.SSHPort))
		if err != nil {
			t.Fatalf("an agent that joined after the coordinator restarted: %v", err)
		}
		conn.Close()
		t.Logf("reachable %v after it joined", time.Since(start).Round(time.Millisecond))
	})
	t.Run("AlreadyRunning", func(t *testing.T) {
		d, _ := daemon.New(daemon.Options{ControlURL: w.c.URL(), StateDir: stateDir, SocketPath: sock + "2",
			AuthKey: func(context.Context) (string, error) { return "", errors.New("not needed") }})
		if err := d.Run(ctx); !errors.Is(err, daemon.ErrAlreadyRunning) {
			t.Fatalf("second daemon on the same state: %v", err)
		}
		d, _ = daemon.New(daemon.Options{ControlURL: w.c.URL(), StateDir: t.TempDir(), SocketPath: sock,
			AuthKey: func(context.Context) (string, error) { return "", errors.New("not needed") }})
		if err := d.Run(ctx); !errors.Is(err, daemon.ErrAlreadyRunning) {
			t.Fatalf("second daemon on the same socket: %v", err)
		}
	})

	// A restart keeps the address, and registers nothing new.
	if err := r.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind: %v", err)
	}
	if _, err := r.client.Status(ctx); !errors.Is(err, daemon.ErrNotRunning) {
		t.Fatalf("status with the daemon stopped: %v", err)
	}
	staleSocket(t, sock)
	if _, err := r.client.Status(ctx); !errors.Is(err, daemon.ErrNotRunning) || !strings.Contains(err.Error(), "stale") {
		t.Fatalf("status with a stale socket: %v", err)
	}
	r2 := w.startDaemon(t, stateDir, sock)
	st, err = r2.client.Status(ctx)
	if err != nil || len(st.Addrs) == 0 || st.Addrs[0] != firstAddr {
		t.Fatalf("after restart: %+v, %v (want address %v)", st, err, firstAddr)
	}
	if n := r.keys.Load() + r2.keys.Load(); n != 1 {
		t.Fatalf("%d auth keys used, want 1 (the first registration only)", n)
	}
	conn := mustDial(t, ctx, r2.client, w.agent.Addr, tunnel.SSHPort)
	conn.Close()
}

// staleSocket leaves a socket file at path that nobody listens on, as a
// killed daemon does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
}

func netAddr(ip netip.Addr, port int) string {
	return netip.AddrPortFrom(ip, uint16(port)).String()
}

func mustDial(t *testing.T, ctx context.Context, c *daemon.Client, ip netip.Addr, port int) net.Conn {
	t.Helper()
	conn, err := tunnel.Dial(ctx, c, "tcp", ip, uint16(port))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}
