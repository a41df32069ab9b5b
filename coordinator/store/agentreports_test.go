package store

import (
	"context"
	"errors"
	"testing"
)

func TestAgentReportsQueries(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	u, _ := s.CreateUser(ctx, "alice", "h", RoleMember)
	w, _ := s.CreateWorkspace(ctx, Workspace{UUID: "w1", OwnerID: u.ID, Name: "dev"})
	a, err := s.CreateAgent(ctx, Agent{UUID: "a1", WorkspaceID: w.ID, Name: "main", TokenHash: "th"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetAgentPlatform(ctx, a.ID, "linux", "arm64"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.AgentByID(ctx, a.ID); got.OS != "linux" || got.Arch != "arm64" {
		t.Fatalf("platform %q/%q", got.OS, got.Arch)
	}
	if err := s.SetAgentPlatform(ctx, 999, "linux", "arm64"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown agent: %v", err)
	}

	if err := s.SetAgentStartup(ctx, a.ID, "echo hi", "/srv", `{"A":"1"}`); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.AgentByID(ctx, a.ID); got.StartupScript != "echo hi" || got.Dir != "/srv" || got.Env != `{"A":"1"}` {
		t.Fatalf("startup %q %q %q", got.StartupScript, got.Dir, got.Env)
	}

	if err := s.AppendAgentLogs(ctx, a.ID, []AgentLog{{Output: "a"}, {Output: "b"}}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountAgentLogs(ctx, a.ID); n != 2 || err != nil {
		t.Fatalf("count = %d, %v", n, err)
	}

	// Keys of the agent are revoked; the user's own and used ones are
	// untouched, and revoking twice is a no-op.
	s.CreateAuthKey(ctx, AuthKey{UserID: u.ID, AgentID: a.ID, Prefix: "k1", SecretHash: "agent1"})
	s.CreateAuthKey(ctx, AuthKey{UserID: u.ID, AgentID: a.ID, Prefix: "k2", SecretHash: "agent2"})
	s.CreateAuthKey(ctx, AuthKey{UserID: u.ID, Prefix: "k3", SecretHash: "user"})
	if n, err := s.RevokeAgentAuthKeys(ctx, a.ID); n != 2 || err != nil {
		t.Fatalf("revoked %d, %v; want 2", n, err)
	}
	if n, _ := s.RevokeAgentAuthKeys(ctx, a.ID); n != 0 {
		t.Fatalf("second revoke: %d", n)
	}
	if _, err := s.CheckAuthKey(ctx, "agent1"); !errors.Is(err, ErrAuthKeyRevoked) {
		t.Fatalf("agent key: %v", err)
	}
	if _, err := s.CheckAuthKey(ctx, "user"); err != nil {
		t.Fatalf("user key: %v", err)
	}
}
