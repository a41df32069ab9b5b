package tunnel_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/tunnel"
)

// apiAs bootstraps the coordinator's first user and returns an API client
// with its session.
func apiAs(t *testing.T, c *coordtest.Coordinator, user string) *client.Client {
	t.Helper()
	anon, err := client.New(c.URL(), "")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := anon.CreateFirstUser(t.Context(), client.LoginRequest{Username: user, Password: "a-long-password-1"})
	if err != nil {
		t.Fatal(err)
	}
	api, err := client.New(c.URL(), sess.Token)
	if err != nil {
		t.Fatal(err)
	}
	return api
}

func TestJoinLeave(t *testing.T) {
	c := coordtest.Start(t)
	api := apiAs(t, c, "alice")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	n, err := tunnel.Join(ctx, api, tunnel.JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("joined in %v", time.Since(start).Round(time.Millisecond))
	nodes, err := api.ListNodes(ctx, client.ListNodesOptions{})
	if err != nil || len(nodes) != 1 || !nodes[0].Ephemeral || !nodes[0].Online {
		t.Fatalf("nodes after Join: %+v, %v", nodes, err)
	}
	start = time.Now()
	if err := tunnel.Leave(n); err != nil {
		t.Fatal(err)
	}
	t.Logf("left in %v", time.Since(start).Round(time.Millisecond))
	// Logged out: the coordinator removes the ephemeral node at once.
	for {
		nodes, err = api.ListNodes(ctx, client.ListNodesOptions{})
		if err == nil && len(nodes) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("nodes after Leave: %+v, %v", nodes, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the node was removed only after %v", d)
	}
}

func TestResolveNotFound(t *testing.T) {
	c := coordtest.Start(t)
	api := apiAs(t, c, "alice")
	_, err := tunnel.Resolve(t.Context(), api, tunnel.Target{Workspace: "nope"}, tunnel.ResolveOptions{Wait: true})
	if !errors.Is(err, tunnel.ErrNotFound) || err.Error() != "workspace nope not found" {
		t.Fatalf("Resolve(nope) = %v", err)
	}
}
