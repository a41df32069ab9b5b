package node_test

import (
	"context"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/node"
)

// TestColdConnectWithoutSTUN checks that a node that just joined reaches
// a peer without waiting for its first netcheck, which gets no STUN reply
// when the coordinator serves none (`--disable-stun`, or UDP to it
// blocked) and then waits 3 s before falling back to HTTPS. Regression:
// Start waited for tailscale's Running state, which needs a DERP
// connection and so that netcheck, and every cold `devmesh ssh` against
// such a coordinator took 3 s longer than with STUN.
//
// The baseline is the same cold connection through a coordinator with
// STUN, measured in the same test; the best of a few tries of each is
// compared.
func TestColdConnectWithoutSTUN(t *testing.T) {
	t.Parallel()
	withSTUN := coldConnect(t, coordtest.Start(t, coordtest.WithoutProvisioning()))
	without := coldConnect(t, coordtest.Start(t, coordtest.WithoutProvisioning(), coordtest.WithoutSTUN()))
	t.Logf("cold start and first connection: %v with STUN, %v without", withSTUN, without)
	if without > 3*withSTUN {
		t.Fatalf("without STUN a cold connection takes %v, over 3x the %v it takes with STUN", without, withSTUN)
	}
}

// coldConnect starts a peer serving one byte per connection, then times
// a fresh in-memory node from Start to that byte, and returns the best of
// two tries.
func coldConnect(t *testing.T, c *coordtest.Coordinator) time.Duration {
	t.Helper()
	alice := c.CreateUser(t, "alice", false)
	key := c.AuthKey(t, alice, true, false)
	srv := startNode(t, c, key, "", "ws")
	serveOneByte(t, srv, 7000)
	srvIP, _ := srv.Addrs()
	addr := netip.AddrPortFrom(srvIP, 7000).String()
	// The first connection is not timed: a peer that itself just joined
	// publishes its endpoints only after its own first netcheck.
	best := time.Duration(1 << 62)
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		n, err := node.Start(ctx, node.Options{ControlURL: c.URL(), AuthKey: key, Hostname: "cli", Logger: logger(t)})
		if err != nil {
			cancel()
			t.Fatalf("start: %v", err)
		}
		conn, err := n.Dial(ctx, "tcp", addr)
		if err == nil {
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			_, err = io.ReadFull(conn, make([]byte, 1))
			conn.Close()
		}
		d := time.Since(start)
		n.Close()
		cancel()
		if err != nil {
			t.Fatalf("cold connection %d: %v", i, err)
		}
		if i > 0 {
			best = min(best, d)
		}
	}
	return best
}
