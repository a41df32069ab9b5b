package control

import (
	"fmt"
	"testing"
	"time"

	"tailscale.com/tailcfg"
)

// bigIndex builds a tailnet of users×perUser devices plus one agent per
// user.
func bigIndex(users, perUser int) *index {
	ix := newIndex(Policy{})
	id := tailcfg.NodeID(0)
	for u := int64(1); u <= int64(users); u++ {
		ix.setUser(User{ID: u, Username: fmt.Sprintf("u%d", u)})
		for i := 0; i < perUser; i++ {
			id++
			ix.insert(testNode(id, u, 0))
		}
		id++
		ix.insert(testNode(id, u, int64(id)))
	}
	return ix
}

// TestChangeFanoutIsLocal pins the scaling property: a change reaches
// only the changed node's owner's nodes, however large the tailnet.
func TestChangeFanoutIsLocal(t *testing.T) {
	for _, users := range []int{10, 1000} {
		ix := bigIndex(users, 4)
		newID := tailcfg.NodeID(1_000_000)
		ds := ix.upsert(testNode(newID, 7, 0))
		if len(ds) != 6 { // 4 devices + 1 agent of user 7, plus the node itself
			t.Errorf("%d users: upsert touched %d nodes, want 6", users, len(ds))
		}
		ds = ix.patch(newID, patchEndpoints, func(n *Node) {})
		if len(ds) != 5 {
			t.Errorf("%d users: patch touched %d nodes, want 5", users, len(ds))
		}
		ds = ix.remove(newID)
		if len(ds) != 5 {
			t.Errorf("%d users: remove touched %d nodes, want 5", users, len(ds))
		}
	}
}

// TestChangeCostRatio measures the cost of one change in a small and a
// large tailnet in the same run and checks the ratio stays far from
// linear growth (the large one is 100x bigger).
func TestChangeCostRatio(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	if raceEnabled {
		t.Skip("timing test: meaningless under the race detector (it took 80s there); runs without -race")
	}
	cost := func(users int) time.Duration {
		ix := bigIndex(users, 4)
		const rounds = 2000
		start := time.Now()
		for i := 0; i < rounds; i++ {
			id := tailcfg.NodeID(1_000_000 + i)
			ix.upsert(testNode(id, int64(1+i%users), 0))
			ix.patch(id, patchDERP, func(n *Node) { n.HomeDERP = 900 })
			ix.remove(id)
		}
		return time.Since(start) / rounds
	}
	cost(50) // warm up
	small, large := cost(50), cost(5000)
	ratio := float64(large) / float64(small)
	t.Logf("per change: %v with 250 nodes, %v with 25000 nodes (ratio %.2f)", small, large, ratio)
	if ratio > 10 {
		t.Fatalf("change cost grows with tailnet size: ratio %.1f for 100x the nodes", ratio)
	}
}
