package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"tailscale.com/ipn/ipnstate"

	"github.com/devmesh/devmesh/node"
)

// peerTable is the daemon's view of its netmap. The watch goroutine
// writes it (set) as the node reports changes; handlers read snapshots
// and wait for the next change.
type peerTable struct {
	mu      sync.Mutex
	state   string        // guarded by mu: the backend state
	peers   []node.Peer   // guarded by mu: never modified in place
	changed chan struct{} // guarded by mu: closed and replaced by set
}

func newPeerTable() *peerTable {
	return &peerTable{changed: make(chan struct{}), state: "Starting"}
}

// set records a new status and wakes the waiters.
func (t *peerTable) set(st *ipnstate.Status) {
	peers := node.Peers(st)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.state, t.peers = st.BackendState, peers
	close(t.changed)
	t.changed = make(chan struct{})
}

// snapshot returns the current state and peers, and a channel closed at
// the next change.
func (t *peerTable) snapshot() (state string, peers []node.Peer, changed <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state, t.peers, t.changed
}

// wait returns host's tailnet address once host is a peer, waiting for
// it to appear until ctx ends.
func (t *peerTable) wait(ctx context.Context, host string) (netip.Addr, error) {
	for {
		_, peers, changed := t.snapshot()
		if ip, ok := node.FindPeer(peers, host); ok {
			return ip, nil
		}
		select {
		case <-ctx.Done():
			return netip.Addr{}, fmt.Errorf("%s: %w", host, node.ErrNoPeer)
		case <-changed:
		}
	}
}
