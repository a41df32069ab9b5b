package control

import (
	"tailscale.com/tailcfg"
)

// patchFields says which of a peer's fields a PeersChangedPatch carries.
// Values are read from the index when the message is built, so bursts of
// changes to one node coalesce into one patch with the latest values.
type patchFields uint8

const (
	patchEndpoints patchFields = 1 << iota
	patchDERP
	patchDisco
	patchOnline
	patchLastSeen
	patchKey
	patchKeyExpiry
)

func (f patchFields) peerChange(n *Node) *tailcfg.PeerChange {
	pc := &tailcfg.PeerChange{NodeID: n.ID}
	if f&patchEndpoints != 0 {
		pc.Endpoints = n.Endpoints
		if pc.Endpoints == nil {
			// Omitted means "unchanged"; an explicit empty list is not
			// expressible, so keep the peer's last endpoints.
			pc.Endpoints = nil
		}
	}
	if f&patchDERP != 0 {
		pc.DERPRegion = n.HomeDERP
	}
	if f&patchDisco != 0 {
		k := n.DiscoKey
		pc.DiscoKey = &k
	}
	if f&patchOnline != 0 {
		on := n.Online
		pc.Online = &on
	}
	if f&patchLastSeen != 0 && !n.LastSeen.IsZero() {
		t := n.LastSeen
		pc.LastSeen = &t
	}
	if f&patchKey != 0 {
		k := n.NodeKey
		pc.Key = &k
	}
	if f&patchKeyExpiry != 0 {
		t := n.KeyExpiry
		pc.KeyExpiry = &t
	}
	return pc
}

// delta accumulates what one node's next map message must carry. Merging
// keeps it minimal: a full map absorbs everything, a whole-node change
// absorbs patches to that node, and a removal cancels earlier changes.
type delta struct {
	full bool // send a complete map
	self bool // resend the node's own tailcfg.Node
	// filter holds the sources whose packet-filter chunk (what that
	// source may send to this node) must be resent or deleted.
	filter  map[tailcfg.NodeID]struct{}
	dns     bool // resend the DNS configuration (its records changed)
	changed map[tailcfg.NodeID]struct{}
	removed map[tailcfg.NodeID]struct{}
	patches map[tailcfg.NodeID]patchFields
}

func (d *delta) addChanged(id tailcfg.NodeID) {
	if d.changed == nil {
		d.changed = map[tailcfg.NodeID]struct{}{}
	}
	d.changed[id] = struct{}{}
	delete(d.removed, id)
	delete(d.patches, id)
}

// addFilter marks src's chunk of the node's packet filter for resending.
func (d *delta) addFilter(src tailcfg.NodeID) {
	if d.filter == nil {
		d.filter = map[tailcfg.NodeID]struct{}{}
	}
	d.filter[src] = struct{}{}
}

func (d *delta) addRemoved(id tailcfg.NodeID) {
	if d.removed == nil {
		d.removed = map[tailcfg.NodeID]struct{}{}
	}
	d.removed[id] = struct{}{}
	delete(d.changed, id)
	delete(d.patches, id)
}

func (d *delta) addPatch(id tailcfg.NodeID, f patchFields) {
	if _, ok := d.changed[id]; ok {
		return
	}
	if d.patches == nil {
		d.patches = map[tailcfg.NodeID]patchFields{}
	}
	d.patches[id] |= f
}

// merge folds o (a later change) into d.
func (d *delta) merge(o *delta) {
	d.full = d.full || o.full
	d.self = d.self || o.self
	for id := range o.filter {
		d.addFilter(id)
	}
	d.dns = d.dns || o.dns
	for id := range o.removed {
		d.addRemoved(id)
	}
	for id := range o.changed {
		d.addChanged(id)
	}
	for id, f := range o.patches {
		d.addPatch(id, f)
	}
}

func (d *delta) empty() bool {
	return !d.full && !d.self && !d.dns && len(d.filter) == 0 && len(d.changed) == 0 && len(d.removed) == 0 && len(d.patches) == 0
}
