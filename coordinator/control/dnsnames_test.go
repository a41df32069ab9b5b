package control

import (
	"context"
	"slices"
	"testing"
	"time"

	"tailscale.com/control/tsp"

	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/secret"
)

// TestAgentNodeNames: through the real protocol, a workspace's first
// agent registers as WS.OWNER.<domain> (whatever hostname it reports),
// another agent as WS-AGENT; the owner's device gets both short names
// WS.<domain> in its DNS configuration, with MagicDNS on.
func TestAgentNodeNames(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Domain = "corp.test" }, nil)
	ctx := context.Background()
	ws, err := ts.store.CreateWorkspace(ctx, store.Workspace{UUID: "w1", OwnerID: ts.alice.ID, Name: "Dev"})
	if err != nil {
		t.Fatal(err)
	}
	register := func(agentName string) string {
		t.Helper()
		var agentID int64
		if agentName != "" {
			a, err := ts.store.CreateAgent(ctx, store.Agent{UUID: agentName, WorkspaceID: ws.ID, Name: agentName, TokenHash: secret.Hash(agentName)})
			if err != nil {
				t.Fatal(err)
			}
			agentID = a.ID
		}
		full, id := secret.New("dmkey")
		if _, err := ts.store.CreateAuthKey(ctx, store.AuthKey{UserID: ts.alice.ID, AgentID: agentID, Prefix: id,
			SecretHash: secret.Hash(full), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		d := ts.newDevice(t)
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		rr, err := d.c.Register(rctx, tsp.RegisterOpts{NodeKey: d.node, AuthKey: full, Hostinfo: hostinfo("host-" + agentName)})
		if err != nil || rr.Error != "" {
			t.Fatalf("register: %+v, %v", rr, err)
		}
		return ts.NodeName(ts.reg.NodeByKey(d.node.Public()))
	}
	if got := register("main"); got != "dev.alice.corp.test" {
		t.Fatalf("first agent's name %q, want dev.alice.corp.test", got)
	}
	if got := register("zdb"); got != "dev-zdb.alice.corp.test" {
		t.Fatalf("second agent's name %q, want dev-zdb.alice.corp.test", got)
	}
	laptop := ts.newDevice(t)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if rr, err := laptop.c.Register(rctx, tsp.RegisterOpts{NodeKey: laptop.node, AuthKey: ts.authKey(t), Hostinfo: hostinfo("laptop")}); err != nil || rr.Error != "" {
		t.Fatalf("register laptop: %+v, %v", rr, err)
	}
	full := openStream(t, laptop)
	if full.Node.Name != "laptop.alice.corp.test." || full.DNSConfig == nil || !full.DNSConfig.Proxied {
		t.Fatalf("self %q, DNS %+v", full.Node.Name, full.DNSConfig)
	}
	var names []string
	for _, r := range full.DNSConfig.ExtraRecords {
		names = append(names, r.Name)
	}
	names = slices.Compact(names)
	if !slices.Equal(names, []string{"dev-zdb.corp.test", "dev.corp.test"}) {
		t.Fatalf("short names %v", names)
	}
}
