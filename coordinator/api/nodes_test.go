package api_test

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"tailscale.com/tailcfg"
	"tailscale.com/types/key"

	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/control"
	"github.com/devmesh/devmesh/coordinator/store"
)

// addNode registers a device for owner the way the control plane does:
// a store row, then the live registry.
func addNode(t *testing.T, srv *apitest.Server, owner int64, host, ip4, ip6 string) *control.Node {
	t.Helper()
	mk, nk := key.NewMachine().Public(), key.NewNode().Public()
	sn, _, err := srv.Store.CreateNode(context.Background(), store.Node{
		UserID: owner, MachineKey: mk.String(), NodeKey: nk.String(), Hostname: host, GivenName: host,
		Hostinfo: `{"OS":"linux","Hostname":"` + host + `"}`, KeyExpiry: time.Now().Add(24 * time.Hour),
	}, "", func() (string, string) { return ip4, ip6 })
	if err != nil {
		t.Fatal(err)
	}
	n := &control.Node{
		ID: tailcfg.NodeID(sn.ID), StableID: tailcfg.StableNodeID(sn.StableID), Owner: owner,
		MachineKey: mk, NodeKey: nk, Hostname: host, GivenName: host,
		Hostinfo:  &tailcfg.Hostinfo{OS: "linux", Hostname: host},
		Addresses: []netip.Prefix{netip.MustParsePrefix(ip4 + "/32"), netip.MustParsePrefix(ip6 + "/128")},
		KeyExpiry: sn.KeyExpiry, Created: sn.CreatedAt,
	}
	srv.Control.Registry().Upsert(n)
	return n
}

func TestNodes(t *testing.T) {
	srv := apitest.New(t)
	ctx := context.Background()
	session := srv.Bootstrap(t, "alice", adminPW)
	admin := srv.Client(t, session)
	bob := srv.Client(t, srv.CreateUser(t, session, "bob", memberPW, client.RoleMember))
	aliceMe, _ := admin.Me(ctx)
	bobMe, _ := bob.Me(ctx)

	aliceNode := addNode(t, srv, aliceMe.ID, "desk", "100.64.0.1", "fd7a:115c:a1e0::1")
	bobNode := addNode(t, srv, bobMe.ID, "laptop", "100.64.0.2", "fd7a:115c:a1e0::2")

	nodes, err := bob.ListNodes(ctx, client.ListNodesOptions{})
	if err != nil || len(nodes) != 1 {
		t.Fatalf("bob's nodes = %+v, %v", nodes, err)
	}
	n := nodes[0]
	// The name has bob's username in it: the API told the control plane
	// about bob when it created him.
	if n.ID != int64(bobNode.ID) || n.Name != "laptop.bob.devmesh.internal" || n.Owner != "bob" ||
		n.OS != "linux" || n.Hostname != "laptop" || n.Online || n.Agent ||
		len(n.Addresses) != 2 || n.Addresses[0] != "100.64.0.2" || n.KeyExpiry.IsZero() {
		t.Fatalf("bob's node = %+v", n)
	}
	_, err = bob.ListNodes(ctx, client.ListNodesOptions{All: true})
	wantAPIError(t, err, http.StatusForbidden, client.CodeForbidden)
	all, err := admin.ListNodes(ctx, client.ListNodesOptions{All: true})
	if err != nil || len(all) != 2 || all[0].Owner != "alice" || all[1].Owner != "bob" {
		t.Fatalf("all nodes = %+v, %v", all, err)
	}

	// Bob cannot delete (or learn about) alice's node.
	wantAPIError(t, bob.DeleteNode(ctx, int64(aliceNode.ID)), http.StatusNotFound, client.CodeNotFound)
	wantAPIError(t, bob.DeleteNode(ctx, 9999), http.StatusNotFound, client.CodeNotFound)
	if srv.Control.Registry().Node(aliceNode.ID) == nil {
		t.Fatal("alice's node removed by bob")
	}
	if err := bob.DeleteNode(ctx, int64(bobNode.ID)); err != nil {
		t.Fatal(err)
	}
	if srv.Control.Registry().Node(bobNode.ID) != nil {
		t.Fatal("bob's node still in the registry")
	}
	if _, err := srv.Store.NodeByID(ctx, int64(bobNode.ID)); err != store.ErrNotFound {
		t.Fatalf("bob's node still stored: %v", err)
	}
	if nodes, _ := bob.ListNodes(ctx, client.ListNodesOptions{}); len(nodes) != 0 {
		t.Fatalf("after delete: %+v", nodes)
	}
	// An admin may delete anyone's node.
	carol := addNode(t, srv, bobMe.ID, "phone", "100.64.0.3", "fd7a:115c:a1e0::3")
	if err := admin.DeleteNode(ctx, int64(carol.ID)); err != nil {
		t.Fatal(err)
	}
}
