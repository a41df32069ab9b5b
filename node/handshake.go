package node

import (
	"context"
	"net/netip"
	"time"

	"tailscale.com/types/key"
)

// kickSchedule is when, after a dial starts, kickHandshake checks the
// WireGuard session: just before netstack's TCP retransmits its SYN (1 s
// initial timeout, doubling: at 1 s and 3 s).
var kickSchedule = []time.Duration{900 * time.Millisecond, 2900 * time.Millisecond}

// kickHandshake watches a dial to ip: at each offset of schedule, if the
// peer has no usable WireGuard session (see sessionUsable), it resets the
// peer in the WireGuard device, so the next packet (the SYN's
// retransmission) starts a fresh handshake at once.
//
// Why: a peer that learned of this node a moment ago can drop the first
// handshake initiation (tailscale's engine updates magicsock's peers, which
// answer disco pings, before the WireGuard device's peer lookup sees the
// new node), and wireguard-go retries an initiation only after 5 s
// (RekeyTimeout). WaitReachable narrows that window; this bounds what a
// lost initiation costs to about a second. The returned func stops the
// watch; call it when the dial returns.
func (n *Node) kickHandshake(ip netip.Addr, schedule []time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		for _, at := range schedule {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(start.Add(at))):
			}
			k, last, ok := n.lastHandshake(ctx, ip)
			if !ok || sessionUsable(last, start, time.Now()) {
				return
			}
			if e, ok := n.ts.Sys().Engine.GetOK(); ok {
				n.log.Info("no WireGuard handshake since the dial began: resetting the peer for a fresh one", "peer", ip, "after", time.Since(start).Round(time.Millisecond))
				e.ResetDevicePeer(k)
				n.kicks.Add(1)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// rekeyAfter is WireGuard's RekeyAfterTime: a session older than this is
// being replaced, by a handshake that may itself be lost.
const rekeyAfter = 2 * time.Minute

// sessionUsable reports whether a WireGuard session whose last handshake
// completed at last can carry a dial that began at start: a handshake
// since the dial began, or a session still young enough not to need one.
// A slow dial over such a session (a busy peer) is left alone.
func sessionUsable(last, start, now time.Time) bool {
	if last.IsZero() {
		return false
	}
	return last.After(start) || now.Sub(last) < rekeyAfter
}

// lastHandshake returns the key of the peer with address ip and when its
// last WireGuard handshake completed (zero: never); ok is false if no
// such peer is known.
func (n *Node) lastHandshake(ctx context.Context, ip netip.Addr) (k key.NodePublic, last time.Time, ok bool) {
	st, err := n.lc.Status(ctx)
	if err != nil {
		return k, last, false
	}
	for _, p := range st.Peer {
		for _, a := range p.TailscaleIPs {
			if a == ip {
				return p.PublicKey, p.LastHandshake, true
			}
		}
	}
	return k, last, false
}
