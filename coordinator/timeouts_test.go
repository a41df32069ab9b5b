package coordinator_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator"
	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/node"
)

// closedWithin reads from c until the server closes it and fails the test
// if that takes longer than limit.
func closedWithin(t *testing.T, c net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after %v", limit)
	}
	return time.Since(start)
}

// TestIdleKeepAliveClosed: a keep-alive connection with no request is
// closed after the idle timeout (there was none: it stayed open forever).
func TestIdleKeepAliveClosed(t *testing.T) {
	cfg := lifecycleConfig(t)
	cfg.IdleTimeout = 500 * time.Millisecond
	s, err := newCoordinator(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: devmesh\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Fatal("server did not keep the connection alive; the test needs it to")
	}
	took := closedWithin(t, c, 10*time.Second)
	t.Logf("idle connection closed after %v", took.Round(time.Millisecond))
}

// TestSlowBodyCutOff: a login whose body trickles in one byte at a time
// is cut off at the body read timeout instead of holding the connection
// (and a handler) for as long as the client likes.
func TestSlowBodyCutOff(t *testing.T) {
	for _, path := range []string{"/api/v1/login", "/login/node/0123456789abcdef"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			cfg := lifecycleConfig(t)
			cfg.BodyReadTimeout = time.Second
			s, err := newCoordinator(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: devmesh\r\n"+
				"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			stop := make(chan struct{})
			wg.Add(1)
			go func() { // one byte every 100 ms: 50 s for the whole body
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}()
			defer func() { close(stop); wg.Wait() }()
			took := closedWithin(t, c, 10*time.Second)
			t.Logf("slow body cut off after %v", took.Round(time.Millisecond))
		})
	}
}

// countingListener counts accepted connections and remembers which are
// still open.
type countingListener struct {
	net.Listener
	mu   sync.Mutex
	open map[*trackedConn]bool
}

type trackedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		defer c.l.mu.Unlock()
		delete(c.l.open, c)
	})
	return c.Conn.Close()
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open[tc] = true
	return tc, nil
}

func (l *countingListener) snapshot() map[*trackedConn]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[*trackedConn]bool{}
	for c := range l.open {
		m[c] = true
	}
	return m
}

// TestLongLivedStreamsNotCut: with short idle and body timeouts, a
// node's control stream (and its DERP connection) outlive both.
func TestLongLivedStreamsNotCut(t *testing.T) {
	ln := &countingListener{Listener: listenLoopback(t), open: map[*trackedConn]bool{}}
	c := coordtest.Start(t, func(cfg *coordinator.Config) {
		cfg.Listener = ln
		cfg.IdleTimeout = 300 * time.Millisecond
		cfg.BodyReadTimeout = 300 * time.Millisecond
	})
	alice := c.CreateUser(t, "alice", false)
	n, err := node.Start(context.Background(), node.Options{ControlURL: c.URL(), AuthKey: c.AuthKey(t, alice, false, false), Hostname: "streamer"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	// Let short-lived requests finish and idle connections time out.
	time.Sleep(time.Second)
	before := ln.snapshot()
	if len(before) == 0 {
		t.Fatal("the node holds no connection to the coordinator")
	}
	time.Sleep(2 * time.Second) // several idle and body timeouts
	after := ln.snapshot()
	for conn := range before {
		if !after[conn] {
			t.Errorf("a connection open for over a second (%v) was closed during the pause", conn.RemoteAddr())
		}
	}
	st, err := n.Status(context.Background())
	if err != nil || st.BackendState != "Running" {
		t.Fatalf("node state after the pause: %v %v", st.BackendState, err)
	}
	t.Logf("%d long-lived connections survived", len(before))
}
