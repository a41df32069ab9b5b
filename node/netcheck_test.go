package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/node"
)

func TestNetcheck(t *testing.T) {
	c := coordtest.Start(t)
	alice := c.CreateUser(t, "alice", false)
	n := startNode(t, c, c.AuthKey(t, alice, false, true), "", "laptop")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dm, err := n.DERPMap(ctx)
	if err != nil || len(dm.Regions) == 0 {
		t.Fatalf("DERPMap: %v, %v", dm, err)
	}
	start := time.Now()
	r, err := node.Netcheck(ctx, dm, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("netcheck in %v: %+v", time.Since(start).Round(time.Millisecond), r)
	if !r.UDP || !r.IPv4 || len(r.Endpoints) == 0 || r.Endpoints[0].Addr().String() != "127.0.0.1" {
		t.Fatalf("report %+v: want UDP to the loopback STUN server, seen from 127.0.0.1", r)
	}
	if r.PreferredRegion != 900 || len(r.Regions) != 1 || r.Regions[0].Code != "devmesh" || r.Regions[0].Latency <= 0 {
		t.Fatalf("regions %+v, preferred %d", r.Regions, r.PreferredRegion)
	}
	// The relay's two STUN ports tell the mapping: loopback has no NAT,
	// so one public port for both.
	if r.STUNServers != 2 || r.MappingVariesByDestIP == nil || *r.MappingVariesByDestIP {
		t.Fatalf("mapping %v with %d STUN servers, want false with 2", r.MappingVariesByDestIP, r.STUNServers)
	}
}

func TestNetcheckUDPBlocked(t *testing.T) {
	c := coordtest.Start(t)
	dm := c.DERPMap().Clone()
	// A STUN port nobody answers on: as if UDP were dropped.
	for _, reg := range dm.Regions {
		for _, n := range reg.Nodes {
			n.STUNPort = 9 // discard
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := node.Netcheck(ctx, dm, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if r.UDP || len(r.Endpoints) != 0 {
		t.Fatalf("report %+v: want no UDP", r)
	}
}
