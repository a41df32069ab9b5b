package control

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tailscale.com/control/tsp"
	"tailscale.com/tailcfg"
)

// onNextMap returns a hook that runs do on the node of the next map
// request right after serveMap looked it up: the race window, made
// deterministic.
func onNextMap(armed *atomic.Bool, do func(s *Server, id tailcfg.NodeID)) func(*Server) {
	return func(s *Server) {
		s.afterMapLookup = func(id tailcfg.NodeID) {
			if armed.CompareAndSwap(true, false) {
				do(s, id)
			}
		}
	}
}

func deleteOnNextMap(t *testing.T, armed *atomic.Bool) func(*Server) {
	return onNextMap(armed, func(s *Server, id tailcfg.NodeID) {
		if err := s.DeleteNode(context.Background(), int64(id)); err != nil {
			t.Errorf("delete node: %v", err)
		}
	})
}

// A one-shot map request whose node is deleted while it is being served
// used to dereference the nil node with the registry's mutex held and
// never unlocked, so every later registration and stream hung.
func TestOneShotMapRacingDeletion(t *testing.T) {
	var armed atomic.Bool
	ts := newTestServer(t, nil, deleteOnNextMap(t, &armed))
	dev := ts.newDevice(t)
	ts.register(t, dev)

	armed.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ms, err := dev.c.Map(ctx, tsp.MapOpts{NodeKey: dev.node, Hostinfo: hostinfo("dev")})
	if err == nil {
		ms.Close()
		t.Fatal("map request of a deleted node succeeded")
	}
	if !strings.Contains(err.Error(), "401") {
		t.Errorf("map request of a deleted node: %v, want a 401", err)
	}
	if armed.Load() {
		t.Fatal("the hook did not run")
	}

	// The control plane still works: a new device registers and streams
	// (each step has its own timeout; a wedged registry times out).
	other := ts.newDevice(t)
	ts.register(t, other)
	openStream(t, other)
}

// A map request that reports a new hostname while its node is deleted
// used to re-insert the deleted node, and the relay admitted its key
// again until a restart.
func TestMapUpdateRacingDeletionDoesNotResurrect(t *testing.T) {
	var armed atomic.Bool
	ts := newTestServer(t, nil, deleteOnNextMap(t, &armed))
	dev := ts.newDevice(t)
	id := ts.register(t, dev)

	armed.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := dev.c.SendMapUpdate(ctx, tsp.SendMapUpdateOpts{NodeKey: dev.node, Hostinfo: hostinfo("renamed")})
	if err == nil {
		t.Error("map update of a deleted node succeeded")
	}
	if armed.Load() {
		t.Fatal("the hook did not run")
	}
	if n := ts.reg.Node(id); n != nil {
		t.Fatalf("deleted node is back in the registry: %+v", n)
	}
	if ts.AdmitNodeKey(dev.node.Public()) {
		t.Fatal("the relay admits the deleted node's key")
	}
	if nodes := ts.reg.Nodes(0); len(nodes) != 0 {
		t.Fatalf("registry holds %d nodes, want 0", len(nodes))
	}
	// Without credentials, the deleted key gets a login link, not the node.
	rr, err := dev.c.Register(ctx, tsp.RegisterOpts{NodeKey: dev.node, Hostinfo: hostinfo("renamed")})
	if err != nil {
		t.Fatal(err)
	}
	if rr.MachineAuthorized {
		t.Fatal("the deleted node's key is authorized again")
	}
}

// A logout that lands while a map request with a new hostname is being
// served used to be undone: the request wrote back its older copy of the
// node, unexpired, and the relay admitted the key again.
func TestMapUpdateDoesNotUndoConcurrentLogout(t *testing.T) {
	var armed atomic.Bool
	var dev *device
	ts := newTestServer(t, nil, onNextMap(&armed, func(s *Server, id tailcfg.NodeID) {
		rr, err := s.logout(context.Background(), dev.machine.Public(),
			&tailcfg.RegisterRequest{NodeKey: dev.node.Public(), Expiry: time.Unix(123, 0)})
		if err != nil || rr.Error != "" {
			t.Errorf("logout: %+v %v", rr, err)
		}
	}))
	dev = ts.newDevice(t)
	id := ts.register(t, dev)

	armed.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := dev.c.SendMapUpdate(ctx, tsp.SendMapUpdateOpts{NodeKey: dev.node, Hostinfo: hostinfo("renamed")}); err != nil {
		t.Fatalf("map update: %v", err)
	}
	if armed.Load() {
		t.Fatal("the hook did not run")
	}
	n := ts.reg.Node(id)
	if n == nil || !n.Expired(time.Now()) {
		t.Fatalf("logout was undone by the map request: %+v", n)
	}
	if n.Hostname != "renamed" {
		t.Errorf("the map request's change was lost: hostname %q", n.Hostname)
	}
	if ts.AdmitNodeKey(dev.node.Public()) {
		t.Fatal("the relay admits a logged-out node's key")
	}
}
