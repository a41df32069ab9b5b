//go:build unix

package sshd

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// TestClientKilled kills the OpenSSH client in the middle of a session;
// the command it started on the workspace must not outlive it.
func TestClientKilled(t *testing.T) {
	for _, mode := range []struct{ name, flag string }{{"pipes", "-T"}, {"pty", "-tt"}} {
		t.Run(mode.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			cmd := ts.command(t, "ssh", mode.flag, "127.0.0.1", "echo pid=$$; exec sleep 300")
			pid := startAndReadPID(t, cmd.StdoutPipe, cmd.Start)
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			waitFor(t, killGrace*3/4, "the remote command to end", func() bool { return processGone(pid) })
		})
	}
}

// startAndReadPID starts a command printing "pid=N" and returns N.
func startAndReadPID[R io.Reader](t *testing.T, pipe func() (R, error), start func() error) int {
	t.Helper()
	stdout, err := pipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("read pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "pid=")))
	if err != nil || processGone(pid) {
		t.Fatalf("no running remote command from line %q", line)
	}
	return pid
}

// TestClientVanishes freezes the network between client and server
// without closing it, as when a peer drops off the tailnet. The server's
// keepalives go unanswered, so it disconnects and stops the command.
func TestClientVanishes(t *testing.T) {
	ts := newTestServer(t, func(o *Options) {
		o.KeepAliveInterval = 200 * time.Millisecond
		o.KeepAliveCountMax = 2
	})
	proxy := newFreezer(t, ts.addr)
	c, err := gossh.Dial("tcp", proxy.addr, &gossh.ClientConfig{
		User:            "test",
		HostKeyCallback: gossh.FixedHostKey(ts.signer.PublicKey()),
		Timeout:         5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	pid := startAndReadPID(t, sess.StdoutPipe, func() error { return sess.Start("echo pid=$$; exec sleep 300") })
	// Still alive after several intervals while the client answers.
	time.Sleep(time.Second)
	if processGone(pid) {
		t.Fatal("the command ended while the client was answering keepalives")
	}
	proxy.freeze()
	waitFor(t, 5*time.Second, "the command of the vanished client to end", func() bool { return processGone(pid) })
}

// freezer is a TCP proxy that can stop forwarding without closing.
type freezer struct {
	addr   string
	frozen chan struct{}
	once   sync.Once
}

func newFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{addr: ln.Addr().String(), frozen: make(chan struct{})}
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				a.Close()
				return
			}
			mu.Lock()
			conns = append(conns, a, b)
			mu.Unlock()
			go f.pipe(a, b)
			go f.pipe(b, a)
		}
	}()
	return f
}

func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-f.frozen:
			return // drop everything, close nothing
		default:
		}
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (f *freezer) freeze() { f.once.Do(func() { close(f.frozen) }) }

// TestCloseEndsEverything closes a server with a session whose command
// ignores SIGHUP, an OpenSSH client with a terminal, a remote forward and
// a connection stuck before its handshake. Close must end them all, in
// bounded time; the test cleanup then checks that no goroutine is left.
func TestCloseEndsEverything(t *testing.T) {
	ts := newTestServer(t, nil)

	c := ts.client(t)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stubborn := startAndReadPID(t, sess.StdoutPipe, func() error {
		return sess.Start("trap '' HUP; echo pid=$$; exec sleep 300")
	})
	fwd, err := c.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fwdAddr := fwd.Addr().String()

	cmd := ts.command(t, "ssh", "-tt", "127.0.0.1", "echo pid=$$; exec sleep 300")
	interactive := startAndReadPID(t, cmd.StdoutPipe, cmd.Start)
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()

	stuck, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()

	start := time.Now()
	if err := ts.srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	took := time.Since(start)
	t.Logf("Close took %v", took.Round(time.Millisecond))
	if took < killGrace/2 {
		t.Errorf("Close took %v; the command ignoring SIGHUP should have had a grace period", took)
	}
	for name, pid := range map[string]int{"SIGHUP-ignoring command": stubborn, "terminal session": interactive} {
		if !processGone(pid) {
			t.Errorf("%s (pid %d) survived Close", name, pid)
		}
	}
	if c, err := net.Dial("tcp", fwdAddr); err == nil {
		c.Close()
		t.Error("remote forward still listening after Close")
	}
	// The server sent its version string; then the connection must end.
	_ = stuck.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadAll(stuck); err != nil && !isConnReset(err) {
		t.Errorf("connection stuck before its handshake still open after Close: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Error("the OpenSSH client did not exit after Close")
	}
	if err := ts.srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func isConnReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func TestServeAfterClose(t *testing.T) {
	ts := newTestServer(t, nil)
	if err := ts.srv.Close(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close = %v, want ErrServerClosed", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Error("Serve left the listener open")
	}
}
