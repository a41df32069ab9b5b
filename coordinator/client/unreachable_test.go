package client

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
)

// TestUnreachable: a coordinator that is down gives an error that says
// so, names the URL, and wraps ErrUnreachable, not a raw dial error.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c, err := New("http://"+addr, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.BuildInfo(context.Background())
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("BuildInfo with the coordinator down: %v, want ErrUnreachable", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "cannot reach the coordinator at http://"+addr) || !strings.Contains(msg, "connection refused") || strings.Contains(msg, "dial tcp") {
		t.Errorf("message %q", msg)
	}

	// A cancelled request is the caller's doing, not an outage.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.BuildInfo(ctx); errors.Is(err, ErrUnreachable) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: %v", err)
	}
}
