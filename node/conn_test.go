package node

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/coordtest"
)

// goneConn is a connection whose peer has reset it: like gonet.TCPConn
// then, it has no addresses.
type goneConn struct{ net.Conn }

func (goneConn) LocalAddr() net.Addr  { return nil }
func (goneConn) RemoteAddr() net.Addr { return nil }
func (goneConn) Close() error         { return nil }

// fakeListener accepts the given connections, then fails.
type fakeListener struct {
	net.Listener
	conns []net.Conn
}

func (l *fakeListener) Accept() (net.Conn, error) {
	if len(l.conns) == 0 {
		return nil, net.ErrClosed
	}
	c := l.conns[0]
	l.conns = l.conns[1:]
	return c, nil
}

func TestAddrListenerDropsResetConns(t *testing.T) {
	live, peer := net.Pipe()
	defer live.Close()
	defer peer.Close()
	ln := addrListener{&fakeListener{conns: []net.Conn{goneConn{}, live}}}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if c.(*addrConn).Conn != live {
		t.Fatalf("Accept returned %v, want the live connection (the reset one dropped)", c)
	}
	if c.RemoteAddr() == nil || c.LocalAddr() == nil {
		t.Fatalf("addresses %v, %v: want both", c.LocalAddr(), c.RemoteAddr())
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after the last: %v, want net.ErrClosed", err)
	}
}

func TestWithAddrsFallback(t *testing.T) {
	src := netip.MustParseAddrPort("100.64.0.1:1234")
	dst := netip.MustParseAddrPort("100.64.0.2:22")
	ac, ok := withAddrs(goneConn{}, dst, src)
	if !ok {
		t.Fatal("withAddrs refused a connection whose addresses were given")
	}
	if got := ac.RemoteAddr().String(); got != src.String() {
		t.Errorf("RemoteAddr %s, want %s", got, src)
	}
	if got := ac.LocalAddr().String(); got != dst.String() {
		t.Errorf("LocalAddr %s, want %s", got, dst)
	}
	if _, ok := withAddrs(goneConn{}, dst, netip.AddrPort{}); ok {
		t.Error("withAddrs accepted a connection with no remote address at all")
	}
	if err := ac.CloseWrite(); !errors.Is(err, errNoHalfClose) {
		t.Errorf("CloseWrite on a connection without it: %v", err)
	}
}

// TestResetConnKeepsAddresses reproduces what crashed an agent: a peer
// connects, then resets the connection; the netstack's connection then
// reports a nil RemoteAddr, and code that logged or authorized by it
// panicked. The connection Listen hands out keeps its addresses.
func TestResetConnKeepsAddresses(t *testing.T) {
	c := coordtest.Start(t)
	alice := c.CreateUser(t, "alice", false)
	key := c.AuthKey(t, alice, true, false)
	start := func(host string) *Node {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		n, err := Start(ctx, Options{ControlURL: c.URL(), AuthKey: key, Hostname: host})
		if err != nil {
			t.Fatalf("start %s: %v", host, err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	a, b := start("a"), start("b")
	bIP, _ := b.Addrs()
	ln, err := b.Listen("tcp", ":7001")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	dialed, err := a.Dial(ctx, "tcp", netip.AddrPortFrom(bIP, 7001).String())
	if err != nil {
		t.Fatal(err)
	}
	want := dialed.LocalAddr().String()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	// Closing with unread data resets the connection (RFC 2525).
	if _, err := sc.Write(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the data arrive unread
	dialed.Close()
	sc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, sc); err == nil {
		t.Log("the peer's close arrived as EOF, not as a reset")
	}
	if raw := sc.(*addrConn).Conn.RemoteAddr(); raw != nil {
		t.Logf("the netstack still reports the remote address %v after the peer left", raw)
	}
	if got := sc.RemoteAddr(); got == nil || got.String() != want {
		t.Fatalf("RemoteAddr after the peer reset: %v, want %s", got, want)
	}
}
