package coordinator

import (
	"log/slog"
	"net"
	"testing"
	"time"
)

// TestCloseEndsSilentConnections: a connection that never sends its
// first byte (an HTTP client's spare keep-alive connection) is closed by
// Close, not left for the 10s peek deadline, so closing a coordinator
// leaves no goroutine behind.
func TestCloseEndsSilentConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newSplitListener(ln, slog.New(slog.DiscardHandler))
	served := make(chan error, 1)
	go func() { served <- s.serve() }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(300 * time.Millisecond) // accepted, waiting for its first byte
	s.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("the silent connection is still open after Close: %v", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
