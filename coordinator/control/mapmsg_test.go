package control

import (
	"context"
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"tailscale.com/tailcfg"
)

// plain is m as one MapResponse with every peer rendered afresh, the way
// responses were built before peers were cached: the reference that
// encode is checked against.
func (m *mapMsg) plain(ix *index, viewer *Node, env *mapEnv) *tailcfg.MapResponse {
	if m == nil {
		return nil
	}
	resp := *m.resp
	nodes := make([]*tailcfg.Node, 0, len(m.peers))
	for _, p := range m.peers {
		nodes = append(nodes, ix.tailNode(p.key.node, viewer, env))
	}
	if m.full {
		resp.Peers = nodes
	} else if len(nodes) > 0 {
		resp.PeersChanged = nodes
	}
	return &resp
}

func (ix *index) fullMap(n *Node, env *mapEnv) *tailcfg.MapResponse {
	return ix.fullMsg(n, env).plain(ix, n, env)
}

func (ix *index) deltaMap(n *Node, d *delta, env *mapEnv) *tailcfg.MapResponse {
	return ix.deltaMsg(n, d, env).plain(ix, n, env)
}

// decodeMsg encodes m as it goes on the wire and decodes it as a client
// does.
func decodeMsg(t *testing.T, m *mapMsg) *tailcfg.MapResponse {
	t.Helper()
	if m == nil {
		return nil
	}
	b, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	var resp tailcfg.MapResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatalf("message does not decode: %v\n%s", err, b)
	}
	return &resp
}

// asJSONValue decodes JSON into generic values, to compare two encodings
// regardless of key order.
func asJSONValue(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, b)
	}
	return v
}

// richFixture is fixture with nodes carrying what a peer encoding holds:
// Hostinfo, endpoints, a home DERP; node 2's key has expired.
func richFixture() *index {
	ix := fixture(Policy{AdminsReachAll: true})
	for id, n := range ix.nodes {
		n.Hostinfo = &tailcfg.Hostinfo{Hostname: n.GivenName, OS: "linux"}
		n.Endpoints = []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(id)}), 41641)}
		n.HomeDERP = 900
		n.Cap = 130
		n.Online = id%2 == 0
	}
	ix.nodes[2].KeyExpiry = time.Now().Add(-time.Hour)
	return ix
}

// sampleDeltas returns a delta that carries peers (2 and 3 changed, with
// 2's filter chunk) and one that carries none (a patch to 2, 4 removed).
func sampleDeltas() (withPeers, noPeers *delta) {
	withPeers, noPeers = &delta{}, &delta{}
	withPeers.addChanged(2)
	withPeers.addChanged(3)
	withPeers.addFilter(2)
	noPeers.addPatch(2, patchEndpoints|patchOnline)
	noPeers.addRemoved(4)
	return withPeers, noPeers
}

// TestSplicedMessageMatchesMarshal: every kind of message, encoded with
// the peers spliced in (on a cache miss, then on a hit), decodes to
// exactly what json.Marshal of the whole response decodes to.
func TestSplicedMessageMatchesMarshal(t *testing.T) {
	env := &mapEnv{domain: "devmesh.internal", now: time.Now}
	ix := richFixture()
	legacy := ix.nodes[1].clone()
	legacy.ID, legacy.Cap = 10, 100
	legacy.NodeKey = testNode(10, alice, 0).NodeKey
	ix.insert(legacy)
	ix.setUser(User{ID: 4, Username: "dave"})
	ix.insert(testNode(11, 4, 0)) // alone: no peers

	withPeers, noPeers := sampleDeltas()
	cases := []struct {
		name      string
		viewer    tailcfg.NodeID
		msg       func() *mapMsg
		wantPeers int
	}{
		{"full map", 1, func() *mapMsg { return ix.fullMsg(ix.nodes[1], env) }, 3},
		{"delta with peers", 1, func() *mapMsg { return ix.deltaMsg(ix.nodes[1], withPeers, env) }, 2},
		{"delta without peers", 1, func() *mapMsg { return ix.deltaMsg(ix.nodes[1], noPeers, env) }, 0},
		{"full map, zero peers", 11, func() *mapMsg { return ix.fullMsg(ix.nodes[11], env) }, 0},
		{"legacy viewer, full map", 10, func() *mapMsg { return ix.fullMsg(ix.nodes[10], env) }, 3},
		{"legacy viewer, delta", 10, func() *mapMsg { return ix.deltaMsg(ix.nodes[10], withPeers, env) }, 2},
	}
	for _, tc := range cases {
		for _, pass := range []string{"miss", "hit"} {
			m := tc.msg()
			if len(m.peers) != tc.wantPeers {
				t.Fatalf("%s: %d peers, want %d", tc.name, len(m.peers), tc.wantPeers)
			}
			for _, p := range m.peers {
				if pass == "hit" && p.enc == nil {
					t.Fatalf("%s: peer %d missed the cache the second time", tc.name, p.key.node.ID)
				}
			}
			got, err := m.encode()
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(m.plain(ix, ix.nodes[tc.viewer], env))
			if err != nil {
				t.Fatal(err)
			}
			if g, w := asJSONValue(t, got), asJSONValue(t, want); !reflect.DeepEqual(g, w) {
				t.Errorf("%s (%s): spliced\n%s\nwant (json.Marshal)\n%s", tc.name, pass, got, want)
			}
		}
	}
}

// peerOf returns the peer with that ID in resp's Peers or PeersChanged.
func peerOf(resp *tailcfg.MapResponse, id tailcfg.NodeID) *tailcfg.Node {
	for _, p := range append(resp.Peers, resp.PeersChanged...) {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// TestPeerCacheFollowsVersions: a changed node is sent as changed (never
// a cached older version, even one encoded late), a renamed user renames
// its nodes, and a removed node's entry is dropped.
func TestPeerCacheFollowsVersions(t *testing.T) {
	env := &mapEnv{domain: "devmesh.internal", now: time.Now}
	ix := richFixture()
	viewer := ix.nodes[1]
	stale := ix.fullMsg(viewer, env)      // built now, encoded after the change
	decodeMsg(t, ix.fullMsg(viewer, env)) // fills the cache
	if m := ix.fullMsg(viewer, env); m.peers[0].enc == nil {
		t.Fatal("second full map missed the cache")
	}

	ep := netip.MustParseAddrPort("198.51.100.7:1234")
	ix.patch(2, patchEndpoints, func(n *Node) { n.Endpoints = []netip.AddrPort{ep} })
	stale.peers[0].enc = nil // as if it had missed: it will store node 2's old version
	decodeMsg(t, stale)      // which must not be stored
	for pass := range 2 {    // a miss, then a hit
		m := ix.fullMsg(viewer, env)
		if hit := m.peers[0].enc != nil; hit != (pass == 1) {
			t.Fatalf("pass %d: cache hit %v for node 2's new version", pass, hit)
		}
		got := peerOf(decodeMsg(t, m), 2)
		if got == nil || len(got.Endpoints) != 1 || got.Endpoints[0] != ep {
			t.Fatalf("after the change, node 2 is sent as %+v", got)
		}
	}

	ix.setUser(User{ID: alice, Username: "alicia"})
	if got := peerOf(decodeMsg(t, ix.fullMsg(viewer, env)), 2); got == nil || got.Name != "n2.alicia.devmesh.internal." {
		t.Fatalf("after the rename, node 2 is sent as %+v", got)
	}

	if n := ix.enc.len(); n != len(ix.nodes) {
		t.Fatalf("cache holds %d nodes, index %d", n, len(ix.nodes))
	}
	stale = ix.fullMsg(viewer, env)
	ix.remove(2)
	decodeMsg(t, stale) // encoding a removed node must not bring its entry back
	if n := ix.enc.len(); n != len(ix.nodes) {
		t.Fatalf("after a removal the cache holds %d nodes, index %d", n, len(ix.nodes))
	}
	ix.enc.mu.Lock()
	_, kept := ix.enc.nodes[2]
	ix.enc.mu.Unlock()
	if kept {
		t.Fatal("removed node still cached")
	}
}

func TestPacingBurstWait(t *testing.T) {
	p := Pacing{Batch: 25 * time.Millisecond, Burst: 100 * time.Millisecond}
	if w := p.burstWait(time.Now().Add(-time.Second)); w > 0 {
		t.Errorf("a burst long after the last message waits %v more", w)
	}
	if w := p.burstWait(time.Now()); w < 90*time.Millisecond || w > 2*p.Burst {
		t.Errorf("a burst right after a message waits %v more, want %v to %v", w, p.Burst, 2*p.Burst)
	}
	// Streams whose last messages went out at different times send the
	// next one at the same tick, a multiple of Burst.
	base := time.Now().Truncate(p.Burst).Add(p.Burst)
	for _, sent := range []time.Duration{0, 10 * time.Millisecond, 99 * time.Millisecond} {
		w := p.burstWait(base.Add(sent - p.Burst))
		at := time.Now().Add(w)
		if off := at.Sub(at.Round(p.Burst)).Abs(); off > 5*time.Millisecond {
			t.Errorf("sent %v after a tick, the next message is due %v off a tick", sent, off)
		}
		if at.Before(base.Add(sent)) {
			t.Errorf("sent %v after a tick, the next message is due before Burst passed", sent)
		}
	}
	if w := (Pacing{Batch: p.Batch, Burst: -1}).burstWait(time.Now()); w > 0 {
		t.Errorf("without a burst interval a burst waits %v more", w)
	}
}

// TestPacingCoalescesBursts: a node changing every 10ms reaches a peer's
// stream in about one message per burst interval; a lone change after a
// quiet spell goes out after the batch delay, and one right after a
// message waits until the burst interval has passed.
func TestPacingCoalescesBursts(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	r := newTestRegistry(t, nil)
	defer r.Close()
	r.Upsert(testNode(1, alice, 0))
	r.Upsert(testNode(2, alice, 0))
	st, _, err := r.OpenStream(1)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := Pacing{Batch: 20 * time.Millisecond, Burst: 300 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	sent := make(chan time.Time, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := st.Next(ctx, time.Minute, p)
			if err != nil {
				return
			}
			if m != nil {
				sent <- time.Now()
			}
		}
	}()
	defer func() { cancel(); <-done }()

	port := uint16(1)
	change := func() {
		port++
		r.Patch(2, patchEndpoints, func(n *Node) {
			n.Endpoints = []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("192.0.2.2"), port)}
		})
	}
	const burst = 900 * time.Millisecond
	for start := time.Now(); time.Since(start) < burst; time.Sleep(10 * time.Millisecond) {
		change()
	}
	time.Sleep(3 * p.Burst) // the last message of the burst, then quiet
	msgs := len(sent)
	// 90 changes: at most one message per Burst, plus the first.
	if max := int(burst/p.Burst) + 2; msgs > max || msgs == 0 {
		t.Errorf("a burst of %d changes took %d messages, want 1..%d", burst/(10*time.Millisecond), msgs, max)
	}
	for range msgs {
		<-sent
	}

	t0 := time.Now() // after a quiet spell
	change()
	var last time.Time
	select {
	case last = <-sent:
		if d := last.Sub(t0); d < p.Batch || d > 2*p.Burst/3 {
			t.Errorf("a lone change went out after %v, want about %v", d, p.Batch)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("lone change never sent")
	}
	change() // right after that message
	select {
	case at := <-sent:
		if d := at.Sub(last); d < p.Burst || d > 2*p.Burst+p.Burst/2 {
			t.Errorf("a change right after a message went out %v after it, want %v to %v", d, p.Burst, 2*p.Burst)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("change after a message never sent")
	}
}

// BenchmarkRegistrationFanout is the coordinator's work for one node
// joining a mesh of 1,000 nodes of one user: the deltas, then each
// peer's message built and encoded as its stream would (uncompressed).
// Reported per receiving peer.
func BenchmarkRegistrationFanout(b *testing.B) {
	env := &mapEnv{domain: "devmesh.internal", now: time.Now}
	ix := newIndex(Policy{})
	ix.setUser(User{ID: alice, Username: "alice"})
	const n = 1000
	for i := 1; i <= n; i++ {
		nd := testNode(tailcfg.NodeID(i), alice, 0)
		nd.Hostinfo = &tailcfg.Hostinfo{Hostname: nd.GivenName, OS: "linux", IPNVersion: "1.102.5"}
		nd.Endpoints = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:41641"), netip.MustParseAddrPort("[2001:db8::1]:41641")}
		nd.HomeDERP, nd.Cap, nd.Online = 900, 130, true
		ix.insert(nd)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := tailcfg.NodeID(n + 1 + i%100)
		nd := testNode(id, alice, 0)
		nd.Hostinfo = &tailcfg.Hostinfo{Hostname: nd.GivenName, OS: "linux"}
		for vid, d := range ix.upsert(nd) {
			if m := ix.deltaMsg(ix.nodes[vid], d, env); m != nil && vid != id {
				if _, err := m.encode(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n/1000, "µs/peer")
}
