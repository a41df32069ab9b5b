package control

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tailscale.com/tailcfg"

	"github.com/devmesh/devmesh/internal/leakcheck"
)

func newTestRegistry(t *testing.T, onEph func(tailcfg.NodeID)) *Registry {
	leakcheck.Check(t)
	r := NewRegistry(RegistryOptions{
		DERPMap:         &tailcfg.DERPMap{},
		Domain:          "devmesh.internal",
		OfflineDebounce: 20 * time.Millisecond,
		EphemeralAfter:  100 * time.Millisecond,
		OnEphemeralIdle: onEph,
	})
	r.SetUser(User{ID: alice, Username: "alice"})
	return r
}

func TestKeyExpiryIsAnnounced(t *testing.T) {
	r := newTestRegistry(t, nil)
	defer r.Close()
	viewer := testNode(1, alice, 0)
	expiring := testNode(2, alice, 0)
	expiring.KeyExpiry = time.Now().Add(150 * time.Millisecond)
	r.Upsert(viewer)
	r.Upsert(expiring)
	st, first, err := r.OpenStream(1)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if full := decodeMsg(t, first); full.Peers[0].Expired {
		t.Fatal("peer expired too early")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		m, err := st.Next(ctx, time.Second, Pacing{})
		if err != nil {
			t.Fatalf("no expiry announcement: %v", err)
		}
		if resp := decodeMsg(t, m); resp != nil && len(resp.PeersChanged) == 1 && resp.PeersChanged[0].Expired {
			return
		}
	}
}

func TestEphemeralNodeThatNeverConnectsIsDeleted(t *testing.T) {
	var deleted atomic.Int64
	r := newTestRegistry(t, func(id tailcfg.NodeID) { deleted.Store(int64(id)) })
	defer r.Close()
	eph := testNode(3, alice, 0)
	eph.Ephemeral = true
	r.Upsert(eph)
	kept := testNode(4, alice, 0)
	kept.Ephemeral = true
	r.Upsert(kept)
	st, _, err := r.OpenStream(4) // this one connects in time
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	time.Sleep(400 * time.Millisecond)
	if got := deleted.Load(); got != 3 {
		t.Fatalf("deleted node %d, want 3 (the one that never connected)", got)
	}
}

func TestUpdateOfGoneNodeDoesNothing(t *testing.T) {
	r := newTestRegistry(t, nil)
	defer r.Close()
	r.Upsert(testNode(1, alice, 0))
	r.Remove(1)
	called := false
	n, ok := r.Update(1, func(n *Node) Change {
		called = true
		n.Hostname = "back"
		return Change{Whole: true}
	})
	if n != nil || ok || called {
		t.Fatalf("Update of a removed node: %v %v called=%v", n, ok, called)
	}
	if r.Node(1) != nil {
		t.Fatal("Update re-inserted a removed node")
	}
}

// Concurrent edits of one node all land: each works on the current node,
// not on a copy read earlier.
func TestConcurrentUpdatesAreNotLost(t *testing.T) {
	r := newTestRegistry(t, nil)
	defer r.Close()
	r.Upsert(testNode(1, alice, 0))
	const writers = 20
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			r.Update(1, func(n *Node) Change {
				n.Endpoints = append(slices.Clone(n.Endpoints), netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(i+1)))
				return Change{Fields: patchEndpoints}
			})
		})
	}
	wg.Wait()
	if got := len(r.Node(1).Endpoints); got != writers {
		t.Fatalf("%d endpoints after %d concurrent updates, want all of them", got, writers)
	}
}
