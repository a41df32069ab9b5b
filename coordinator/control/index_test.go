package control

import (
	"fmt"
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

const (
	alice = 1
	bob   = 2
	carol = 3 // admin
)

func testNode(id tailcfg.NodeID, owner, agent int64) *Node {
	v4 := netip.AddrFrom4([4]byte{100, 64, 0, byte(id)})
	return &Node{
		ID: id, Owner: owner, AgentID: agent,
		NodeKey:   key.NewNode().Public(),
		Addresses: []netip.Prefix{netip.PrefixFrom(v4, 32)},
		GivenName: fmt.Sprintf("n%d", id),
	}
}

// fixture: alice has devices 1, 2 and agent 3; bob has device 4 and
// agent 5; carol (admin) has device 6.
func fixture(p Policy) *index {
	ix := newIndex(p)
	ix.setUser(User{ID: alice, Username: "alice"})
	ix.setUser(User{ID: bob, Username: "bob"})
	ix.setUser(User{ID: carol, Username: "carol", Admin: true})
	for _, n := range []*Node{
		testNode(1, alice, 0), testNode(2, alice, 0), testNode(3, alice, 30),
		testNode(4, bob, 0), testNode(5, bob, 50), testNode(6, carol, 0),
	} {
		ix.insert(n)
	}
	return ix
}

func peerIDs(ix *index, id tailcfg.NodeID) []tailcfg.NodeID {
	var out []tailcfg.NodeID
	for _, p := range ix.peers(ix.node(id)) {
		out = append(out, p.ID)
	}
	return out
}

func filterSrcs(ix *index, id tailcfg.NodeID) []string {
	var out []string
	for _, r := range ix.filterFor(ix.node(id)) {
		out = append(out, r.SrcIPs...)
	}
	sort.Strings(out)
	return out
}

func TestWhoSeesWhom(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		node   tailcfg.NodeID
		peers  []tailcfg.NodeID
		srcs   []string // who may send to node
	}{
		{"device sees own devices and agents", Policy{}, 1, []tailcfg.NodeID{2, 3}, []string{"100.64.0.2"}},
		{"agent is reached by owner's devices only", Policy{}, 3, []tailcfg.NodeID{1, 2}, []string{"100.64.0.1", "100.64.0.2"}},
		{"other user is isolated", Policy{}, 4, []tailcfg.NodeID{5}, []string{}},
		{"admin not exempt by default", Policy{}, 6, nil, []string{}},
		{"admin reaches all agents when allowed", Policy{AdminsReachAll: true}, 6, []tailcfg.NodeID{3, 5}, []string{}},
		{"agent filter admits admin when allowed", Policy{AdminsReachAll: true}, 5, []tailcfg.NodeID{4, 6}, []string{"100.64.0.4", "100.64.0.6"}},
		{"admin reach does not extend to devices", Policy{AdminsReachAll: true}, 4, []tailcfg.NodeID{5}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := fixture(tt.policy)
			if diff := cmp.Diff(tt.peers, peerIDs(ix, tt.node)); diff != "" {
				t.Errorf("peers (-want +got):\n%s", diff)
			}
			got := filterSrcs(ix, tt.node)
			if got == nil {
				got = []string{}
			}
			if diff := cmp.Diff(tt.srcs, got); diff != "" {
				t.Errorf("filter sources (-want +got):\n%s", diff)
			}
		})
	}
}

// summary is a comparable form of a node's delta.
type summary struct {
	Full, Self, Filter bool
	Changed, Removed   []tailcfg.NodeID
	Patches            map[tailcfg.NodeID]patchFields
}

func summarize(ds deltas) map[tailcfg.NodeID]summary {
	out := map[tailcfg.NodeID]summary{}
	for id, d := range ds {
		s := summary{Full: d.full, Self: d.self, Filter: len(d.filter) > 0, Changed: sortedIDs(d.changed), Removed: sortedIDs(d.removed)}
		if len(d.patches) > 0 {
			s.Patches = d.patches
		}
		if len(s.Changed) == 0 {
			s.Changed = nil
		}
		if len(s.Removed) == 0 {
			s.Removed = nil
		}
		out[id] = s
	}
	return out
}

func TestChangeDeltas(t *testing.T) {
	ids := func(v ...tailcfg.NodeID) []tailcfg.NodeID { return v }
	tests := []struct {
		name   string
		change func(ix *index) deltas
		want   map[tailcfg.NodeID]summary
	}{
		{
			name:   "new device of alice reaches alice's nodes only",
			change: func(ix *index) deltas { return ix.upsert(testNode(7, alice, 0)) },
			want: map[tailcfg.NodeID]summary{
				1: {Filter: true, Changed: ids(7)},
				2: {Filter: true, Changed: ids(7)},
				3: {Filter: true, Changed: ids(7)},
				7: {Self: true},
			},
		},
		{
			name:   "new agent of bob: bob's device sees it, no filter change (agents reach nobody)",
			change: func(ix *index) deltas { return ix.upsert(testNode(8, bob, 80)) },
			want: map[tailcfg.NodeID]summary{
				4: {Changed: ids(8)},
				8: {Self: true},
			},
		},
		{
			name: "endpoint patch goes to viewers only",
			change: func(ix *index) deltas {
				return ix.patch(1, patchEndpoints|patchDERP, func(n *Node) { n.HomeDERP = 900 })
			},
			want: map[tailcfg.NodeID]summary{
				2: {Patches: map[tailcfg.NodeID]patchFields{1: patchEndpoints | patchDERP}},
				3: {Patches: map[tailcfg.NodeID]patchFields{1: patchEndpoints | patchDERP}},
			},
		},
		{
			name:   "removing a device updates peers and the filters it was in",
			change: func(ix *index) deltas { return ix.remove(2) },
			want: map[tailcfg.NodeID]summary{
				1: {Filter: true, Removed: ids(2)},
				3: {Filter: true, Removed: ids(2)},
			},
		},
		{
			name:   "removing an agent changes no filter",
			change: func(ix *index) deltas { return ix.remove(3) },
			want: map[tailcfg.NodeID]summary{
				1: {Removed: ids(3)},
				2: {Removed: ids(3)},
			},
		},
		{
			name: "moving a node to another owner",
			change: func(ix *index) deltas {
				n := ix.node(2).clone()
				n.Owner = bob
				return ix.upsert(n)
			},
			want: map[tailcfg.NodeID]summary{
				1: {Filter: true, Removed: ids(2)},
				3: {Filter: true, Removed: ids(2)},
				4: {Filter: true, Changed: ids(2)},
				5: {Filter: true, Changed: ids(2)},
				// The full map lists the new peers; the lost ones are
				// for a full map with no peers (see deltaMsg).
				2: {Self: true, Full: true, Changed: ids(4, 5), Removed: ids(1, 3)},
			},
		},
		{
			name: "key rotation patches viewers and resends self",
			change: func(ix *index) deltas {
				return ix.patch(4, patchKey|patchKeyExpiry, func(n *Node) { n.NodeKey = key.NewNode().Public() })
			},
			want: map[tailcfg.NodeID]summary{
				5: {Patches: map[tailcfg.NodeID]patchFields{4: patchKey | patchKeyExpiry}},
				4: {Self: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := fixture(Policy{})
			if diff := cmp.Diff(tt.want, summarize(tt.change(ix))); diff != "" {
				t.Errorf("deltas (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeltaMergeKeepsMinimal(t *testing.T) {
	d := &delta{}
	d.addPatch(1, patchEndpoints)
	d.merge(&delta{changed: map[tailcfg.NodeID]struct{}{1: {}}})
	if _, ok := d.patches[1]; ok {
		t.Fatal("patch survived a whole-node change")
	}
	d.addPatch(1, patchDERP)
	if _, ok := d.patches[1]; ok {
		t.Fatal("patch added after a whole-node change")
	}
	d.merge(&delta{removed: map[tailcfg.NodeID]struct{}{1: {}}})
	if _, ok := d.changed[1]; ok || len(d.removed) != 1 {
		t.Fatalf("removal did not cancel change: %+v", d)
	}
}

func TestDeltaMapMessages(t *testing.T) {
	env := &mapEnv{domain: "devmesh.internal", now: time.Now}
	ix := fixture(Policy{})
	// A delta naming a node that is no longer visible becomes a removal.
	d := &delta{}
	d.addChanged(4) // bob's node, invisible to alice's node 1
	d.addPatch(2, patchOnline)
	resp := ix.deltaMap(ix.node(1), d, env)
	if len(resp.PeersChanged) != 0 || !cmp.Equal(resp.PeersRemoved, []tailcfg.NodeID{4}) {
		t.Fatalf("invisible change: changed=%v removed=%v", resp.PeersChanged, resp.PeersRemoved)
	}
	if len(resp.PeersChangedPatch) != 1 || resp.PeersChangedPatch[0].Online == nil {
		t.Fatalf("patch: %+v", resp.PeersChangedPatch)
	}
	if resp.Node != nil || resp.PacketFilters != nil {
		t.Fatal("delta carried self or filter it did not ask for")
	}
	if got := ix.deltaMap(ix.node(1), &delta{}, env); got != nil {
		t.Fatalf("empty delta produced %+v", got)
	}
	full := ix.fullMap(ix.node(1), env)
	if full.Node == nil || full.Node.Name != "n1.alice.devmesh.internal." || len(full.Peers) != 2 {
		t.Fatalf("full map: node=%v peers=%d", full.Node, len(full.Peers))
	}
	if full.Debug == nil || !full.Debug.DisableLogTail {
		t.Fatal("full map must disable log upload")
	}
	if chunks := ix.fullMap(ix.node(6), env).PacketFilters; len(chunks) != 1 || chunks["*"] != nil {
		t.Fatalf("isolated node filter = %#v, want only the clear-all chunk", chunks)
	}
	if f := ix.filterFor(ix.node(6)); f == nil || len(f) != 0 {
		t.Fatalf("isolated node filter = %#v, want empty non-nil", f)
	}
}

// TestFilterChunksTrackFullFilter plays clients that start from their
// full maps and apply only the filter chunks their deltas carry: after
// every change each client's assembled filter must equal the filter the
// index would send in a full map now (a stale or missing chunk would let
// a removed node in, or keep a new one out).
func TestFilterChunksTrackFullFilter(t *testing.T) {
	env := &mapEnv{domain: "devmesh.internal", now: time.Now}
	ix := fixture(Policy{AdminsReachAll: true})
	clients := map[tailcfg.NodeID]map[string][]tailcfg.FilterRule{}
	apply := func(id tailcfg.NodeID, chunks map[string][]tailcfg.FilterRule) {
		if v, ok := chunks["*"]; ok && v == nil {
			clients[id] = map[string][]tailcfg.FilterRule{}
		}
		for k, v := range chunks {
			switch {
			case k == "*":
			case v == nil:
				delete(clients[id], k)
			default:
				clients[id][k] = v
			}
		}
	}
	for id, n := range ix.nodes {
		apply(id, ix.fullMap(n, env).PacketFilters)
	}
	moved := testNode(2, alice, 0)
	moved.Addresses = []netip.Prefix{netip.MustParsePrefix("100.64.1.2/32")}
	changes := []func() deltas{
		func() deltas { return ix.upsert(testNode(7, alice, 0)) }, // a new device: alice's nodes admit it
		func() deltas { return ix.upsert(testNode(8, bob, 80)) },  // an agent: reaches nobody
		func() deltas { return ix.remove(1) },                     // alice's device leaves every filter
		func() deltas { return ix.upsert(moved) },                 // new addresses, in others' and its own filter
		func() deltas { return ix.remove(6) },                     // the admin's device leaves bob's agent's filter
		func() deltas { return ix.upsert(testNode(9, carol, 0)) }, // and another admin device enters
	}
	for i, change := range changes {
		for id, d := range change() {
			n := ix.nodes[id]
			if n == nil {
				continue
			}
			if resp := ix.deltaMap(n, d, env); resp != nil && resp.PacketFilters != nil {
				apply(id, resp.PacketFilters)
			}
		}
		for id, n := range ix.nodes {
			if _, ok := clients[id]; !ok { // joined in this change: its first map is full
				apply(id, ix.fullMap(n, env).PacketFilters)
			}
			if diff := cmp.Diff(ix.filterFor(n), assembleFilter(clients[id])); diff != "" {
				t.Fatalf("change %d: node %d's filter from deltas differs from its full filter (-full +deltas):\n%s", i, id, diff)
			}
		}
	}
}

// TestFullMapWithNoPeersRemovesOldOnes: a client reads an empty Peers in
// a full map as "no change", so a node that moves to an owner with no
// other node must get its old peers in PeersRemoved.
func TestFullMapWithNoPeersRemovesOldOnes(t *testing.T) {
	env := &mapEnv{domain: "devmesh.internal", now: time.Now}
	ix := fixture(Policy{})
	ix.setUser(User{ID: 4, Username: "dave"})
	moved := ix.node(2).clone()
	moved.Owner = 4
	d := ix.upsert(moved)[2]
	if !d.full {
		t.Fatal("owner change did not send a full map")
	}
	m := ix.deltaMsg(ix.node(2), d, env)
	if resp := decodeMsg(t, m); len(resp.Peers) != 0 || !cmp.Equal(resp.PeersRemoved, []tailcfg.NodeID{1, 3}) {
		t.Fatalf("full map after the move: peers %v, removed %v; want none, [1 3]", resp.Peers, resp.PeersRemoved)
	}
	// Moving back: the full map lists the peers (and nothing else).
	back := ix.node(2).clone()
	back.Owner = alice
	d = ix.upsert(back)[2]
	if resp := decodeMsg(t, ix.deltaMsg(ix.node(2), d, env)); len(resp.Peers) != 2 || resp.PeersRemoved != nil {
		t.Fatalf("full map after moving back: %d peers, removed %v", len(resp.Peers), resp.PeersRemoved)
	}
}
