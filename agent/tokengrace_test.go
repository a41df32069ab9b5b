package agent_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/devmesh/devmesh/agent"
	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/secret"
)

// runAgent runs an agent with token in the background; the channel gets
// what Run returned, then is closed.
func runAgent(t *testing.T, url, token, stateDir string, grace time.Duration) (<-chan error, context.CancelFunc) {
	t.Helper()
	a, err := agent.New(agent.Options{URL: url, Token: token, StateDir: stateDir, Logger: logger(t, "agent"), TokenRejectedGrace: grace})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- a.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("agent.Run did not return within 20s of cancel")
		}
	})
	return done, cancel
}

// TestTokenRegisteredLater is a template's agent: it starts (during
// terraform apply) with a token the coordinator does not know yet, keeps
// asking, and connects once the build has registered the token.
func TestTokenRegisteredLater(t *testing.T) {
	coord := coordtest.Start(t, coordtest.WithoutProvisioning())
	ctx := context.Background()
	alice := coord.CreateUser(t, "alice", false)
	ws, err := coord.Store().CreateWorkspace(ctx, store.Workspace{UUID: uuid.NewString(), OwnerID: alice.ID, Name: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	token, _ := secret.New("dma")
	stateDir := t.TempDir()
	done, _ := runAgent(t, coord.URL(), token, stateDir, time.Minute)
	select {
	case err := <-done:
		t.Fatalf("the agent gave up on a token not registered yet: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	registered := time.Now()
	ag, err := coord.Store().CreateAgent(ctx, store.Agent{UUID: uuid.NewString(), WorkspaceID: ws.ID, Name: "main", TokenHash: secret.Hash(token)})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		nodes, _ := coord.Store().NodesOfAgent(ctx, ag.ID)
		if len(nodes) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent did not join within 30s of its token being registered")
		}
	}
	t.Logf("measured: token registered to agent node registered %v", time.Since(registered).Round(time.Millisecond))

	// Accepted once, a rejection ends the agent at once: the grace is
	// only for a token never seen.
	if err := coord.Store().DeleteWorkspace(ctx, ws.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, agent.ErrTokenRejected) {
			t.Fatalf("Run after the workspace was deleted: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the agent still runs 30s after its workspace was deleted")
	}

	// Restarted on the same state directory (a service manager would),
	// it remembers the token was accepted and stops at once too.
	start := time.Now()
	done, _ = runAgent(t, coord.URL(), token, stateDir, time.Minute)
	select {
	case err := <-done:
		if !errors.Is(err, agent.ErrTokenRejected) || strings.Contains(err.Error(), "not accepted in") {
			t.Fatalf("restarted agent of a deleted workspace: %v", err)
		}
		t.Logf("measured: a restarted agent of a deleted workspace stopped after %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("a restarted agent of a deleted workspace waits out the grace period")
	}
}

// TestTokenNeverAccepted: an unknown token is retried for the grace
// period, then Run fails with ErrTokenRejected; with no grace it fails at
// the first rejection.
func TestTokenNeverAccepted(t *testing.T) {
	coord := coordtest.Start(t, coordtest.WithoutProvisioning())
	token, _ := secret.New("dma")
	for _, grace := range []time.Duration{700 * time.Millisecond, -1} {
		start := time.Now()
		done, _ := runAgent(t, coord.URL(), token, t.TempDir(), grace)
		select {
		case err := <-done:
			took := time.Since(start)
			if !errors.Is(err, agent.ErrTokenRejected) {
				t.Fatalf("grace %v: Run returned %v, want ErrTokenRejected", grace, err)
			}
			if grace > 0 && (took < grace || !strings.Contains(err.Error(), "not accepted in")) {
				t.Fatalf("grace %v: gave up after %v: %v", grace, took, err)
			}
			if msg := err.Error(); strings.Contains(msg, token) {
				t.Fatalf("the error shows the token: %s", msg)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("grace %v: the agent still runs after 10s", grace)
		}
	}
}
