package control

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"time"

	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// index is the in-memory, indexed view of all nodes and users. It does no
// I/O and takes no locks (but enc's): the Registry owns one and serializes
// access. Every change method returns the smallest deltas, for only the
// nodes that can see the changed node, instead of recomputing netmaps.
type index struct {
	policy  Policy
	nodes   map[tailcfg.NodeID]*Node
	byKey   map[key.NodePublic]tailcfg.NodeID
	byOwner map[int64]map[tailcfg.NodeID]struct{}
	users   map[int64]User
	// agents and adminDevices are only consulted with AdminsReachAll,
	// where visibility crosses owners.
	agents       map[tailcfg.NodeID]struct{}
	adminDevices map[tailcfg.NodeID]struct{}
	// enc caches the peers' JSON; it follows insert and delete.
	enc *peerCache
}

func newIndex(p Policy) *index {
	return &index{
		policy:       p,
		nodes:        map[tailcfg.NodeID]*Node{},
		byKey:        map[key.NodePublic]tailcfg.NodeID{},
		byOwner:      map[int64]map[tailcfg.NodeID]struct{}{},
		users:        map[int64]User{},
		agents:       map[tailcfg.NodeID]struct{}{},
		adminDevices: map[tailcfg.NodeID]struct{}{},
		enc:          newPeerCache(),
	}
}

func (ix *index) node(id tailcfg.NodeID) *Node { return ix.nodes[id] }

func (ix *index) nodeByKey(k key.NodePublic) *Node {
	id, ok := ix.byKey[k]
	if !ok {
		return nil
	}
	return ix.nodes[id]
}

// setUser records a user. Users must be known before their nodes. Node
// names include the owner's username, so a changed user drops the cached
// encodings (registration sets the unchanged owner again: no drop).
func (ix *index) setUser(u User) {
	if old, ok := ix.users[u.ID]; ok && old == u {
		return
	}
	ix.users[u.ID] = u
	ix.enc.reset()
}

func (ix *index) canReach(src, dst *Node) bool {
	return ix.policy.CanReach(src, dst, ix.users[src.Owner].Admin)
}

func (ix *index) visible(a, b *Node) bool { return ix.canReach(a, b) || ix.canReach(b, a) }

// candidates calls fn for every node that might be visible to n: the
// owner's nodes, plus the cross-owner sets when admins reach all agents.
func (ix *index) candidates(n *Node, fn func(*Node)) {
	for id := range ix.byOwner[n.Owner] {
		fn(ix.nodes[id])
	}
	if !ix.policy.AdminsReachAll {
		return
	}
	var cross map[tailcfg.NodeID]struct{}
	switch {
	case n.IsAgent():
		cross = ix.adminDevices
	case ix.users[n.Owner].Admin:
		cross = ix.agents
	}
	for id := range cross {
		if m := ix.nodes[id]; m.Owner != n.Owner {
			fn(m)
		}
	}
}

// peers returns the nodes visible to n, sorted by ID.
func (ix *index) peers(n *Node) []*Node {
	var out []*Node
	ix.candidates(n, func(m *Node) {
		if ix.visible(n, m) {
			out = append(out, m)
		}
	})
	slices.SortFunc(out, func(a, b *Node) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// viewers returns the IDs of the nodes that can see n.
func (ix *index) viewers(n *Node) map[tailcfg.NodeID]bool {
	out := map[tailcfg.NodeID]bool{}
	ix.candidates(n, func(m *Node) {
		if ix.visible(n, m) {
			out[m.ID] = ix.canReach(n, m)
		}
	})
	return out
}

func (ix *index) insert(n *Node) {
	ix.nodes[n.ID] = n
	ix.enc.track(n)
	ix.byKey[n.NodeKey] = n.ID
	if ix.byOwner[n.Owner] == nil {
		ix.byOwner[n.Owner] = map[tailcfg.NodeID]struct{}{}
	}
	ix.byOwner[n.Owner][n.ID] = struct{}{}
	switch {
	case n.IsAgent():
		ix.agents[n.ID] = struct{}{}
	case ix.users[n.Owner].Admin:
		ix.adminDevices[n.ID] = struct{}{}
	}
}

func (ix *index) delete(n *Node) {
	delete(ix.nodes, n.ID)
	ix.enc.untrack(n)
	if ix.byKey[n.NodeKey] == n.ID {
		delete(ix.byKey, n.NodeKey)
	}
	delete(ix.byOwner[n.Owner], n.ID)
	if len(ix.byOwner[n.Owner]) == 0 {
		delete(ix.byOwner, n.Owner)
	}
	delete(ix.agents, n.ID)
	delete(ix.adminDevices, n.ID)
}

// deltas maps a node to what its next map message must carry.
type deltas map[tailcfg.NodeID]*delta

func (d deltas) get(id tailcfg.NodeID) *delta {
	if d[id] == nil {
		d[id] = &delta{}
	}
	return d[id]
}

// upsert adds n or replaces the node with n.ID. Peers that gain, keep or
// lose sight of n get PeersChanged or PeersRemoved; their packet filter is
// resent only if n's ability to reach them (or its addresses) changed. n
// itself gets its self node, or a full map if its owner changed.
func (ix *index) upsert(n *Node) deltas {
	out := deltas{}
	old := ix.nodes[n.ID]
	var oldViewers map[tailcfg.NodeID]bool
	if old != nil {
		oldViewers = ix.viewers(old)
		ix.delete(old)
	}
	ix.insert(n)
	newViewers := ix.viewers(n)
	// renamed: n's short DNS record (name or addresses) differs from old's.
	renamed := old != nil && (old.GivenName != n.GivenName || old.Owner != n.Owner || !slices.Equal(old.Addresses, n.Addresses))
	for id, reach := range newViewers {
		d := out.get(id)
		d.addChanged(n.ID)
		oldReach, seen := oldViewers[id]
		if (ix.namesOwnAgent(id, n) || (seen && ix.namesOwnAgent(id, old))) && (!seen || renamed) {
			d.dns = true
		}
		if reach != oldReach || (seen && reach && !slices.Equal(old.Addresses, n.Addresses)) {
			d.addFilter(n.ID)
		}
	}
	for id, oldReach := range oldViewers {
		if _, still := newViewers[id]; still {
			continue
		}
		d := out.get(id)
		d.addRemoved(n.ID)
		d.dns = d.dns || ix.namesOwnAgent(id, old)
		if oldReach {
			d.addFilter(n.ID)
		}
	}
	self := out.get(n.ID)
	self.self = true
	if old != nil && (old.Owner != n.Owner || !slices.Equal(old.Addresses, n.Addresses)) {
		// Every chunk of its own filter names its addresses.
		self.full = true
	}
	if old != nil {
		// Visibility is mutual: n's viewers are its peers. Peers it
		// lost must be removed on its side too, even with a full map:
		// a client reads an empty Peers as "no change", so a full map
		// with no peers left carries these removals (see deltaMsg).
		for id := range oldViewers {
			if _, still := newViewers[id]; !still {
				self.addRemoved(id)
			}
		}
		for id := range newViewers {
			if _, seen := oldViewers[id]; !seen {
				self.addChanged(id)
			}
		}
	}
	return out
}

// remove deletes the node with that ID; every peer that saw it gets
// PeersRemoved (and a new filter if it could reach them).
func (ix *index) remove(id tailcfg.NodeID) deltas {
	out := deltas{}
	n := ix.nodes[id]
	if n == nil {
		return out
	}
	viewers := ix.viewers(n)
	dnsViewers := map[tailcfg.NodeID]bool{}
	for vid := range viewers {
		dnsViewers[vid] = ix.namesOwnAgent(vid, n)
	}
	ix.delete(n)
	for vid, reach := range viewers {
		d := out.get(vid)
		d.addRemoved(id)
		d.dns = d.dns || dnsViewers[vid]
		if reach {
			d.addFilter(id)
		}
	}
	return out
}

// patch applies mutate to a copy of the node and tells its viewers the
// changed fields as a PeersChangedPatch. Visibility must not depend on
// the fields a patch touches.
func (ix *index) patch(id tailcfg.NodeID, fields patchFields, mutate func(*Node)) deltas {
	out := deltas{}
	old := ix.nodes[id]
	if old == nil {
		return out
	}
	n := old.clone()
	defer func() {
		if fields == 0 {
			clear(out) // a silent update: nothing for peers to learn
		}
	}()
	mutate(n)
	ix.delete(old)
	ix.insert(n)
	for vid := range ix.viewers(n) {
		out.get(vid).addPatch(id, fields)
	}
	if fields&(patchKey|patchKeyExpiry) != 0 {
		out.get(id).self = true
	}
	return out
}

// fullMsg builds the complete map message for n.
func (ix *index) fullMsg(n *Node, env *mapEnv) *mapMsg {
	peers := ix.peers(n)
	resp := &tailcfg.MapResponse{
		Node:            ix.tailNode(n, n, env),
		DERPMap:         env.derpMap,
		DNSConfig:       ix.dnsConfig(n, env),
		Domain:          env.domain,
		CollectServices: "false",
		PacketFilters:   ix.fullFilter(n),
		Debug:           &tailcfg.Debug{DisableLogTail: true},
	}
	users := map[int64]bool{n.Owner: true}
	for _, p := range peers {
		users[p.Owner] = true
	}
	resp.UserProfiles = ix.profiles(users)
	now := env.now()
	resp.ControlTime = &now
	return ix.peerMsg(resp, true, peers, n, env)
}

// deltaMsg turns a pending delta into a map message for n; nil when
// there is nothing to send.
func (ix *index) deltaMsg(n *Node, d *delta, env *mapEnv) *mapMsg {
	if d.full {
		m := ix.fullMsg(n, env)
		if len(m.peers) == 0 {
			// The client keeps its peers when Peers is empty; tell it
			// which are gone.
			m.resp.PeersRemoved = sortedIDs(d.removed)
		}
		return m
	}
	resp := &tailcfg.MapResponse{}
	users := map[int64]bool{}
	if d.self {
		resp.Node = ix.tailNode(n, n, env)
		users[n.Owner] = true
	}
	if d.dns {
		resp.DNSConfig = ix.dnsConfig(n, env)
	}
	if len(d.filter) > 0 {
		resp.PacketFilters = make(map[string][]tailcfg.FilterRule, len(d.filter))
		for src := range d.filter {
			var rule []tailcfg.FilterRule // nil deletes the chunk
			if m := ix.nodes[src]; m != nil && ix.canReach(m, n) {
				rule = filterRule(m, n)
			}
			resp.PacketFilters[filterKey(src)] = rule
		}
	}
	removed := map[tailcfg.NodeID]bool{}
	for id := range d.removed {
		removed[id] = true
	}
	var changed []*Node
	for _, id := range sortedIDs(d.changed) {
		p := ix.nodes[id]
		if p == nil || !ix.visible(n, p) {
			removed[id] = true
			continue
		}
		changed = append(changed, p)
		users[p.Owner] = true
	}
	for _, id := range sortedIDs(d.patches) {
		p := ix.nodes[id]
		if p == nil || !ix.visible(n, p) {
			continue
		}
		resp.PeersChangedPatch = append(resp.PeersChangedPatch, d.patches[id].peerChange(p))
	}
	for id := range removed {
		resp.PeersRemoved = append(resp.PeersRemoved, id)
	}
	slices.Sort(resp.PeersRemoved)
	if len(users) > 0 {
		resp.UserProfiles = ix.profiles(users)
	}
	if resp.Node == nil && resp.PacketFilters == nil && resp.DNSConfig == nil && len(changed) == 0 &&
		len(resp.PeersRemoved) == 0 && len(resp.PeersChangedPatch) == 0 {
		return nil
	}
	return ix.peerMsg(resp, false, changed, n, env)
}

func (ix *index) profiles(users map[int64]bool) []tailcfg.UserProfile {
	out := make([]tailcfg.UserProfile, 0, len(users))
	for id := range users {
		if u, ok := ix.users[id]; ok {
			out = append(out, u.profile())
		}
	}
	slices.SortFunc(out, func(a, b tailcfg.UserProfile) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// The packet filter goes to clients in named chunks
// (MapResponse.PacketFilters), one per node that may reach the receiver,
// so that a node joining or leaving costs each peer one chunk rather than
// a filter listing every source: with N nodes in a mesh, a registration
// then costs O(N), not O(N^2), in filters built, encoded and sent.

// filterKey names the chunk holding what src may send.
func filterKey(src tailcfg.NodeID) string { return "n" + strconv.FormatInt(int64(src), 10) }

// filterRule lets m send to n, to any port.
func filterRule(m, n *Node) []tailcfg.FilterRule {
	srcs := make([]string, 0, len(m.Addresses))
	for _, a := range m.Addresses {
		srcs = append(srcs, a.Addr().String())
	}
	dsts := make([]tailcfg.NetPortRange, 0, len(n.Addresses))
	for _, a := range n.Addresses {
		dsts = append(dsts, tailcfg.NetPortRange{IP: a.Addr().String(), Ports: tailcfg.PortRangeAny})
	}
	return []tailcfg.FilterRule{{SrcIPs: srcs, DstPorts: dsts}}
}

// fullFilter is n's whole inbound filter as chunks, starting with "*":
// nil, which clears every chunk the client held, so that a node nobody
// may reach ends with an empty filter (allow nothing).
func (ix *index) fullFilter(n *Node) map[string][]tailcfg.FilterRule {
	out := map[string][]tailcfg.FilterRule{"*": nil}
	ix.candidates(n, func(m *Node) {
		if ix.canReach(m, n) {
			out[filterKey(m.ID)] = filterRule(m, n)
		}
	})
	return out
}

// filterFor returns n's inbound packet filter as a client assembles it:
// the chunks concatenated in key order. An empty (non-nil) list means
// "allow nothing".
func (ix *index) filterFor(n *Node) []tailcfg.FilterRule {
	return assembleFilter(ix.fullFilter(n))
}

// assembleFilter concatenates chunks the way tailscale's client does.
func assembleFilter(chunks map[string][]tailcfg.FilterRule) []tailcfg.FilterRule {
	out := []tailcfg.FilterRule{}
	for _, k := range slices.Sorted(maps.Keys(chunks)) {
		out = append(out, chunks[k]...)
	}
	return out
}

func sortedIDs[V any](m map[tailcfg.NodeID]V) []tailcfg.NodeID {
	ids := make([]tailcfg.NodeID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// mapEnv is what map responses need beyond the index.
type mapEnv struct {
	derpMap *tailcfg.DERPMap
	domain  string // base DNS domain, e.g. "devmesh.internal"
	now     func() time.Time
}
