package node_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/node"
)

// TestLostHandshakeRetriedSoon: a node dials a peer that does not know it
// yet (the coordinator holds peers' map changes for 1.5 s, and the dial
// skips WaitReachable), so the peer drops the first WireGuard handshake
// initiation. wireguard-go retries an initiation only after 5 s; the
// dial's watch resets the peer, and the SYN netstack retransmits at 3 s
// carries a fresh initiation. Without the watch (the baseline, same
// setup) the connection takes 5 s: that shows the setup loses the first
// initiation.
func TestLostHandshakeRetriedSoon(t *testing.T) {
	dial := func(t *testing.T, watch bool) (time.Duration, *node.Node) {
		c := coordtest.Start(t, coordtest.WithMapBatchDelay(1500*time.Millisecond))
		alice := c.CreateUser(t, "alice", false)
		key := c.AuthKey(t, alice, true, false)
		b := startNode(t, c, key, t.TempDir(), "b")
		bIP, _ := b.Addrs()
		serveOneByte(t, b, 7000)
		time.Sleep(time.Second) // b's map stream settles: the next change waits the batch delay
		a := startNode(t, c, key, t.TempDir(), "a")
		a.MarkPrimed(bIP)
		if !watch {
			a.SetKickSchedule(nil)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		conn, err := a.Dial(ctx, "tcp", netip.AddrPortFrom(bIP, 7000).String())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err != nil {
			t.Fatalf("read: %v", err)
		}
		return time.Since(start), a
	}
	t.Run("baseline", func(t *testing.T) {
		t.Parallel()
		d, _ := dial(t, false)
		t.Logf("without the watch: %v", d.Round(time.Millisecond))
		if d < 4500*time.Millisecond {
			t.Fatalf("without the watch the connection took %v: the setup did not lose the first handshake initiation, so the other subtest proves nothing", d)
		}
	})
	t.Run("watched", func(t *testing.T) {
		t.Parallel()
		d, a := dial(t, true)
		t.Logf("with the watch: %v, %d peer resets", d.Round(time.Millisecond), a.Kicks())
		if d > 4*time.Second || a.Kicks() == 0 {
			t.Errorf("connection took %v after %d peer resets; want under 4 s (wireguard-go alone retries at 5 s)", d, a.Kicks())
		}
	})
}

// TestSessionUsable: the watch leaves a session alone when it has a
// handshake since the dial began or one young enough to need none; it
// resets only a peer with no session, or one whose rekey may be lost.
func TestSessionUsable(t *testing.T) {
	now := time.Now()
	start := now.Add(-time.Second)
	for _, tc := range []struct {
		name string
		last time.Time
		want bool
	}{
		{"never", time.Time{}, false},
		{"since the dial began", now.Add(-500 * time.Millisecond), true},
		{"a minute before the dial", now.Add(-time.Minute), true},
		{"past rekey time", now.Add(-3 * time.Minute), false},
	} {
		if got := node.SessionUsable(tc.last, start, now); got != tc.want {
			t.Errorf("%s: sessionUsable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
