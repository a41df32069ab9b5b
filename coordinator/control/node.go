package control

import (
	"net/netip"
	"time"

	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// Node is the control plane's in-memory view of a tailnet node. Values in
// the index are treated as immutable: a change replaces the *Node.
type Node struct {
	ID         tailcfg.NodeID
	StableID   tailcfg.StableNodeID
	Owner      int64 // user ID; for an agent node, the workspace owner
	AgentID    int64 // non-zero for a workspace agent's node
	MachineKey key.MachinePublic
	NodeKey    key.NodePublic
	DiscoKey   key.DiscoPublic
	Addresses  []netip.Prefix // one /32 and one /128
	Hostname   string         // as the node reports it
	GivenName  string         // unique among the owner's nodes; first DNS label
	Hostinfo   *tailcfg.Hostinfo
	Endpoints  []netip.AddrPort
	HomeDERP   int
	Ephemeral  bool
	Cap        tailcfg.CapabilityVersion
	KeyExpiry  time.Time // zero: never
	Created    time.Time
	LastSeen   time.Time
	Online     bool
}

// IsAgent reports whether n is a workspace agent's node.
func (n *Node) IsAgent() bool { return n.AgentID != 0 }

// Expired reports whether n's key has expired at now.
func (n *Node) Expired(now time.Time) bool {
	return !n.KeyExpiry.IsZero() && !now.Before(n.KeyExpiry)
}

// clone returns a shallow copy safe to modify field by field (slices that
// are replaced, not mutated, may be shared).
func (n *Node) clone() *Node {
	c := *n
	return &c
}

// User is what the control plane needs to know about an account.
type User struct {
	ID       int64
	Username string
	Admin    bool
}

func (u User) profile() tailcfg.UserProfile {
	return tailcfg.UserProfile{
		ID:          tailcfg.UserID(u.ID),
		LoginName:   u.Username,
		DisplayName: u.Username,
	}
}
