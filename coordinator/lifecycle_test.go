package coordinator_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator"
	"github.com/devmesh/devmesh/internal/leakcheck"
)

// flakyListener fails Accept with err the first fails times, then (when
// forever is false) accepts from the real listener.
type flakyListener struct {
	net.Listener
	err     error
	fails   int32
	forever bool
	calls   atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if n := l.calls.Add(1); l.forever || n <= l.fails {
		// Like the kernel's EMFILE, an accept error does not block.
		time.Sleep(time.Millisecond)
		return nil, l.err
	}
	return l.Listener.Accept()
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func lifecycleConfig(t *testing.T) coordinator.Config {
	return coordinator.Config{
		DataDir:             filepath.Join(t.TempDir(), "data"),
		Listen:              "127.0.0.1:0",
		DisableProvisioning: true,
	}
}

// TestAcceptRetriesTemporaryErrors: running out of file descriptors for
// a moment does not close the port for good (it used to: the accept loop
// returned on any non-timeout error, silently).
func TestAcceptRetriesTemporaryErrors(t *testing.T) {
	ln := &flakyListener{Listener: listenLoopback(t), fails: 4,
		err: &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}}
	cfg := lifecycleConfig(t)
	cfg.Listener = ln
	s, err := coordinator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	url := "http://" + ln.Addr().String()
	var code int
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, _, err := tryGet(url + "/healthz"); err == nil {
			code = c
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code != 200 {
		t.Fatalf("no answer after temporary accept errors (status %d)", code)
	}
	if n := ln.calls.Load(); n <= 4 {
		t.Fatalf("Accept called %d times, want the 4 failures and more", n)
	}
	select {
	case <-s.Failed():
		t.Fatal("server reported a fatal error for temporary accept errors")
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
}

// TestAcceptPermanentErrorEndsRun: a permanent accept error ends Run
// with that error (so `devmesh server` exits non-zero) instead of
// leaving a process that runs on without a port.
func TestAcceptPermanentErrorEndsRun(t *testing.T) {
	boom := errors.New("listener broken for good")
	ln := &flakyListener{Listener: listenLoopback(t), forever: true, err: boom}
	cfg := lifecycleConfig(t)
	cfg.Listener = ln
	s, err := coordinator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, boom) {
			t.Fatalf("Run returned %v, want the accept error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after a permanent accept error")
	}
	if _, err := ln.Listener.Accept(); err == nil || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the port is still open after a fatal error: %v", err)
	}
}

// TestNewBindsAndStartsNothing: New only validates; the TCP port and the
// STUN port stay free and no goroutine starts until Start.
func TestNewBindsAndStartsNothing(t *testing.T) {
	tcp := listenLoopback(t)
	tcpAddr := tcp.Addr().String()
	tcp.Close()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udpAddr := udp.LocalAddr().String()
	udp.Close()

	cfg := lifecycleConfig(t)
	cfg.Listen, cfg.STUNListen = tcpAddr, udpAddr
	mark := leakcheck.NewMark()
	s, err := coordinator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if started := mark.Started(); len(started) > 0 {
		t.Errorf("New started %d goroutine(s):\n\n%s", len(started), strings.Join(started, "\n\n"))
	}
	for _, try := range []func() (interface{ Close() error }, error){
		func() (interface{ Close() error }, error) { return net.Listen("tcp", tcpAddr) },
		func() (interface{ Close() error }, error) { return net.ListenPacket("udp4", udpAddr) },
	} {
		c, err := try()
		if err != nil {
			t.Fatalf("New bound a port: %v", err)
		}
		c.Close()
	}
	if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
		t.Errorf("New created the data dir (stat: %v)", err)
	}

	// Start binds both; Close frees both and stops every goroutine.
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l, err := net.Listen("tcp", tcpAddr); err == nil {
		l.Close()
		t.Fatal("the TCP port is free after Start")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if l, err := net.ListenPacket("udp4", udpAddr); err != nil {
		t.Fatalf("STUN port still bound after Close: %v", err)
	} else {
		l.Close()
	}
	waitStarted(t, mark)
}

// waitStarted waits for the goroutines started since mark to end.
func waitStarted(t *testing.T, mark leakcheck.Mark) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := mark.Started()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutine(s) left behind:\n%s", len(left), trimStacks(strings.Join(left, "\n\n")))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func trimStacks(s string) string {
	if len(s) > 8000 {
		return s[:8000] + "\n..."
	}
	return strings.TrimSpace(s)
}
