package node

import (
	"net/netip"
	"time"
)

// MarkPrimed makes the next Dial to ip skip WaitReachable, as if an
// earlier Dial had already waited for the peer.
func (n *Node) MarkPrimed(ip netip.Addr) {
	n.primedMu.Lock()
	defer n.primedMu.Unlock()
	if n.primed == nil {
		n.primed = map[netip.Addr]bool{}
	}
	n.primed[ip] = true
}

// Kicks is how many WireGuard peers kickHandshake has reset.
func (n *Node) Kicks() int64 { return n.kicks.Load() }

// SetKickSchedule replaces the node's kickHandshake schedule (nil: no
// watch).
func (n *Node) SetKickSchedule(s []time.Duration) { n.kickAt = s }

// SessionUsable exports sessionUsable.
var SessionUsable = sessionUsable
