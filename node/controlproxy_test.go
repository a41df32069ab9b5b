package node_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator"
	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/internal/certpin"
	"github.com/devmesh/devmesh/node"
)

// TestControlOverPinnedTLS: a node reaches a coordinator that serves its
// self-signed certificate when the certificate is pinned (ControlTLS),
// also after a restart from saved state; a wrong pin gets nowhere.
func TestControlOverPinnedTLS(t *testing.T) {
	c := coordtest.Start(t, coordtest.WithoutProvisioning(), func(cfg *coordinator.Config) { cfg.TLSSelfSigned = true })
	if !strings.HasPrefix(c.URL(), "https://") {
		t.Fatalf("access URL %s", c.URL())
	}
	alice := c.CreateUser(t, "alice", false)

	wrong := strings.Repeat("00", 32)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, err := node.Start(ctx, node.Options{ControlURL: c.URL(), AuthKey: c.AuthKey(t, alice, false, false), Hostname: "mallory", ControlTLS: certpin.Config(wrong), Logger: logger(t)}); err == nil {
		n.Close()
		t.Fatal("a node came up with the wrong certificate pinned")
	}

	dir := filepath.Join(t.TempDir(), "state")
	opts := node.Options{ControlURL: c.URL(), AuthKey: c.AuthKey(t, alice, false, false), Dir: dir, Hostname: "pinned", ControlTLS: certpin.Config(c.Fingerprint()), Logger: logger(t)}
	for i := 0; i < 2; i++ { // the second start reconnects from saved state
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		n, err := node.Start(ctx, opts)
		cancel()
		if err != nil {
			t.Fatalf("start %d: %v", i+1, err)
		}
		v4, _ := n.Addrs()
		if !v4.IsValid() {
			t.Fatalf("start %d: no address", i+1)
		}
		n.Close()
		opts.AuthKey = "" // a restart needs none
	}
}
