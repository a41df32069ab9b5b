package node_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/node"
)

// TestFallbackTCP: a port without a listener goes to the fallback
// handler, which sees the real source and destination; a refusal, a port
// that has a listener, and a removed handler behave as without one.
func TestFallbackTCP(t *testing.T) {
	c := coordtest.Start(t)
	alice := c.CreateUser(t, "alice", false)
	key := c.AuthKey(t, alice, true, false)
	a := startNode(t, c, key, "", "a")
	b := startNode(t, c, key, "", "b")
	av4, _ := a.Addrs()
	bv4, _ := b.Addrs()
	ln, err := b.Listen("tcp", ":7001")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("listener"))
			c.Close()
		}
	}()
	seen := make(chan [2]netip.AddrPort, 10)
	unregister := b.HandleFallbackTCP(func(src, dst netip.AddrPort) func(net.Conn) {
		seen <- [2]netip.AddrPort{src, dst}
		if dst.Port() == 9999 {
			return nil
		}
		return func(c net.Conn) {
			c.Write([]byte("fallback"))
			c.Close()
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	read := func(port uint16) (string, error) {
		c, err := a.Dial(ctx, "tcp", netip.AddrPortFrom(bv4, port).String())
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		return string(got), err
	}
	if got, err := read(8123); got != "fallback" {
		t.Fatalf("port 8123: %q, %v", got, err)
	}
	if s := <-seen; s[0].Addr() != av4 || s[1] != netip.AddrPortFrom(bv4, 8123) {
		t.Fatalf("handler saw %v -> %v, want %v -> %v:8123", s[0], s[1], av4, bv4)
	}
	if got, err := read(7001); got != "listener" {
		t.Fatalf("port 7001 (listener): %q, %v", got, err)
	}
	if _, err := read(9999); !node.IsRefused(err) {
		t.Fatalf("port 9999 (handler refuses): %v, want refused", err)
	}
	unregister()
	if _, err := read(8123); !node.IsRefused(err) {
		t.Fatalf("after unregister: %v, want refused", err)
	}
}
