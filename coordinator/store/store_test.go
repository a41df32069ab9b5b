package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func openTest(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "devmesh.db")
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestMigrationsIdempotent(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t)
	if _, err := s.CreateUser(ctx, "alice", "h", RoleAdmin); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	if n, _ := s2.CountUsers(ctx); n != 1 {
		t.Fatalf("users after reopen = %d, want 1", n)
	}
}

func TestFirstUserOnlyOnce(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	u, err := s.CreateFirstUser(ctx, "root", "h")
	if err != nil || u.Role != RoleAdmin {
		t.Fatalf("first user: %+v, %v", u, err)
	}
	if _, err := s.CreateFirstUser(ctx, "mallory", "h"); !errors.Is(err, ErrConflict) {
		t.Fatalf("second bootstrap: err = %v, want ErrConflict", err)
	}
	if _, err := s.CreateUser(ctx, "root", "h", RoleMember); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate username: err = %v", err)
	}
}

func seqAlloc() AddressAllocator {
	i := 0
	return func() (string, string) {
		i++
		return fmt.Sprintf("100.64.0.%d", i), fmt.Sprintf("fd7a:115c:a1e0::%d", i)
	}
}

func TestAuthKeyConsumption(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	u, _ := s.CreateUser(ctx, "alice", "h", RoleMember)
	single, _ := s.CreateAuthKey(ctx, AuthKey{UserID: u.ID, Prefix: "p1", SecretHash: "single"})
	_, _ = s.CreateAuthKey(ctx, AuthKey{UserID: u.ID, Prefix: "p2", SecretHash: "reuse", Reusable: true, Ephemeral: true})
	_, _ = s.CreateAuthKey(ctx, AuthKey{UserID: u.ID, Prefix: "p3", SecretHash: "old", ExpiresAt: time.Now().Add(-time.Minute)})
	_, _ = s.CreateAuthKey(ctx, AuthKey{UserID: u.ID, Prefix: "p4", SecretHash: "revoked"})
	keys, _ := s.ListAuthKeys(ctx, u.ID)
	if err := s.RevokeAuthKey(ctx, u.ID, keys[3].ID); err != nil {
		t.Fatal(err)
	}
	alloc := seqAlloc()
	nk := 0
	reg := func(hash string) (Node, error) {
		nk++
		n, _, err := s.CreateNode(ctx, Node{MachineKey: "m", NodeKey: fmt.Sprintf("nk%d", nk), Hostname: "h", GivenName: "h"}, hash, alloc)
		return n, err
	}
	n, err := reg("single")
	if err != nil || n.UserID != u.ID || n.Ephemeral {
		t.Fatalf("single-use first: %+v %v", n, err)
	}
	if _, err := reg("single"); !errors.Is(err, ErrAuthKeyUsed) {
		t.Fatalf("single-use reuse: %v", err)
	}
	for i := 0; i < 2; i++ {
		if n, err := reg("reuse"); err != nil || !n.Ephemeral {
			t.Fatalf("reusable #%d: %+v %v", i, n, err)
		}
	}
	for hash, want := range map[string]error{"old": ErrAuthKeyExpired, "revoked": ErrAuthKeyRevoked, "nope": ErrAuthKeyUnknown} {
		if _, err := reg(hash); !errors.Is(err, want) {
			t.Errorf("%s: err = %v, want %v", hash, err, want)
		}
	}
	nodes, _ := s.ListNodes(ctx)
	if len(nodes) != 3 {
		t.Fatalf("nodes = %d, want 3 (refused registrations must change nothing)", len(nodes))
	}
	if k, _ := s.ListAuthKeys(ctx, u.ID); k[0].ID != single.ID || k[0].UsedAt.IsZero() {
		t.Fatalf("single-use key not marked used: %+v", k[0])
	}
}

func TestCreateNodeRetriesTakenAddress(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	u, _ := s.CreateUser(ctx, "alice", "h", RoleMember)
	fixed := func() (string, string) { return "100.64.0.1", "fd7a:115c:a1e0::1" }
	a, _, err := s.CreateNode(ctx, Node{UserID: u.ID, MachineKey: "m", NodeKey: "a", Hostname: "a", GivenName: "a"}, "", fixed)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	alloc := func() (string, string) {
		calls++
		if calls < 3 {
			return fixed()
		}
		return "100.64.0.2", "fd7a:115c:a1e0::2"
	}
	b, _, err := s.CreateNode(ctx, Node{UserID: u.ID, MachineKey: "m", NodeKey: "b", Hostname: "b", GivenName: "b"}, "", alloc)
	if err != nil || b.IPv4 != "100.64.0.2" || calls != 3 {
		t.Fatalf("b = %+v, err %v, calls %d", b, err, calls)
	}
	if a.StableID == b.StableID || a.StableID == "" {
		t.Fatalf("stable IDs: %q %q", a.StableID, b.StableID)
	}
	if _, _, err := s.CreateNode(ctx, Node{UserID: u.ID, MachineKey: "m", NodeKey: "a", Hostname: "a", GivenName: "a"}, "", seqAlloc()); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate node key: %v", err)
	}
}

func TestSecretPersists(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	n := 0
	gen := func() (string, error) { n++; return fmt.Sprintf("v%d", n), nil }
	a, _ := s.GetOrCreateSecret(ctx, "k", gen)
	b, _ := s.GetOrCreateSecret(ctx, "k", gen)
	if a != "v1" || b != "v1" {
		t.Fatalf("got %q then %q", a, b)
	}
}

func TestWorkspacesAndAgents(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	u, _ := s.CreateUser(ctx, "alice", "h", RoleMember)
	w, err := s.CreateWorkspace(ctx, Workspace{UUID: "w1", OwnerID: u.ID, Name: "dev"})
	if err != nil || !w.IsExternal() {
		t.Fatalf("create: %+v %v", w, err)
	}
	if _, err := s.CreateWorkspace(ctx, Workspace{UUID: "w2", OwnerID: u.ID, Name: "dev"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate name: %v", err)
	}
	a, err := s.CreateAgent(ctx, Agent{UUID: "a1", WorkspaceID: w.ID, Name: "main", TokenHash: "th"})
	if err != nil || a.Lifecycle != LifecycleCreated {
		t.Fatalf("agent: %+v %v", a, err)
	}
	if got, err := s.AgentByTokenHash(ctx, "th"); err != nil || got.ID != a.ID {
		t.Fatalf("by token: %+v %v", got, err)
	}
	if err := s.AppendAgentLogs(ctx, a.ID, []AgentLog{{Output: "one"}, {Output: "two", Stream: "stderr"}}); err != nil {
		t.Fatal(err)
	}
	logs, _ := s.ListAgentLogs(ctx, a.ID, 0, 10)
	if len(logs) != 2 || logs[1].Stream != "stderr" {
		t.Fatalf("logs: %+v", logs)
	}
	if more, _ := s.ListAgentLogs(ctx, a.ID, logs[0].ID, 10); len(more) != 1 || more[0].Output != "two" {
		t.Fatalf("logs after: %+v", more)
	}
	if err := s.SetWorkspaceState(ctx, w.ID, []byte(`{"version":4}`)); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.WorkspaceState(ctx, w.ID); string(st) != `{"version":4}` {
		t.Fatalf("state: %q", st)
	}
	if err := s.DeleteWorkspace(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AgentByTokenHash(ctx, "th"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("agent survived its workspace: %v", err)
	}
}
