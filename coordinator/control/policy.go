package control

// Policy decides which nodes may reach which. It is a pure value.
//
// The rules: a user's own devices reach each other and the agents of that
// user's workspaces; agents initiate nothing (their replies pass through
// the receiver's stateful filter); nodes of different users never meet.
// With AdminsReachAll, an admin's devices also reach every agent.
type Policy struct {
	AdminsReachAll bool
}

// CanReach reports whether src may open connections to dst. admin tells
// whether src's owner is an admin.
func (p Policy) CanReach(src, dst *Node, srcOwnerAdmin bool) bool {
	if src.ID == dst.ID || src.IsAgent() {
		return false
	}
	if src.Owner == dst.Owner {
		return true
	}
	return p.AdminsReachAll && srcOwnerAdmin && dst.IsAgent()
}
