package tunnel_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/devmesh/devmesh/tunnel"
)

// TestSpeedtestDownloadEndsAtDuration checks that a download counts what
// arrives within its duration and then ends, even while the other side
// is still sending (as an agent's TCP stack does with the megabytes it
// holds when the agent stops writing). Regression: the client read until
// EOF, so on a slow path a 2 s test took seconds more, and its figure
// mixed in the drain. The server here sends until the client goes away;
// the test fails if the client waits for it instead.
func TestSpeedtestDownloadEndsAtDuration(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	serverGaveUp := make(chan bool, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			serverGaveUp <- false
			return
		}
		defer c.Close()
		io.ReadFull(c, make([]byte, 9))
		buf := make([]byte, 64<<10)
		stop := time.Now().Add(time.Minute)
		for time.Now().Before(stop) {
			c.SetWriteDeadline(stop)
			if _, err := c.Write(buf); err != nil {
				serverGaveUp <- false // the client closed first
				return
			}
		}
		serverGaveUp <- true
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := 300 * time.Millisecond
	res, err := tunnel.RunSpeedtest(ctx, conn, tunnel.Download, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if <-serverGaveUp {
		t.Fatalf("the download ran until the server stopped sending (%v), not for %v", res.Duration, d)
	}
	if res.Bytes <= 0 || res.Duration < d {
		t.Fatalf("result %d bytes in %v, want some bytes in at least %v", res.Bytes, res.Duration, d)
	}
}
