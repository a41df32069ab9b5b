package store

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMigration0004CancelsExtraQueuedBuilds upgrades a version-3 database
// whose workspace has several queued builds: all but the oldest start or
// stop are canceled (a delete stays), so the new index applies.
func TestMigration0004CancelsExtraQueuedBuilds(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "devmesh.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`)
	entries, _ := fs.ReadDir(migrationFS, "migrations")
	for v, e := range entries[:3] {
		body, _ := fs.ReadFile(migrationFS, "migrations/"+e.Name())
		for _, stmt := range splitStatements(string(body)) {
			exec(stmt)
		}
		exec(`INSERT INTO schema_migrations VALUES (?, 0)`, v+1)
	}
	exec(`INSERT INTO users (id, username, password_hash, role, created_at) VALUES (1, 'alice', 'h', 'admin', 0)`)
	exec(`INSERT INTO workspaces (id, uuid, owner_id, name, created_at) VALUES (1, 'u1', 1, 'a', 0), (2, 'u2', 1, 'b', 0)`)
	for _, b := range []struct {
		ws, n      int
		tr, status string
	}{
		{1, 1, "start", "running"}, {1, 2, "stop", "pending"}, {1, 3, "start", "pending"}, {1, 4, "delete", "pending"},
		{2, 1, "start", "pending"}, {2, 2, "stop", "pending"}, {2, 3, "start", "succeeded"},
	} {
		exec(`INSERT INTO builds (workspace_id, number, transition, status, created_at) VALUES (?, ?, ?, ?, 5)`, b.ws, b.n, b.tr, b.status)
	}
	db.Close()

	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := map[[2]int]string{
		{1, 1}: "running", {1, 2}: "canceled", {1, 3}: "canceled", {1, 4}: "pending",
		{2, 1}: "pending", {2, 2}: "canceled", {2, 3}: "succeeded",
	}
	for k, status := range want {
		b, err := s.BuildByNumber(ctx, int64(k[0]), k[1])
		if err != nil || b.Status != status {
			t.Errorf("workspace %d build %d: %+v %v, want %s", k[0], k[1], b, err, status)
		}
		if status == "canceled" && (b.FinishedAt.IsZero() || !strings.Contains(b.Reason, "one queued build")) {
			t.Errorf("canceled build %v: %+v", k, b)
		}
	}
	u, err := s.UserByID(ctx, 1)
	if err != nil || u.Disabled() {
		t.Fatalf("user after the upgrade: %+v %v", u, err)
	}
}

func TestDisabledUserGetsNoNode(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	u, err := s.CreateUser(ctx, "bob", "h", RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, "alice", "h", RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAuthKey(ctx, AuthKey{UserID: u.ID, Prefix: "k", SecretHash: "kh", Reusable: true, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if u, err = s.SetUserDisabled(ctx, u.ID, true); err != nil || !u.Disabled() {
		t.Fatalf("disable: %+v %v", u, err)
	}
	if _, err := s.CheckAuthKey(ctx, "kh"); !errors.Is(err, ErrAuthKeyOwnerDisabled) || !errors.Is(err, ErrAuthKeyRevoked) {
		t.Fatalf("CheckAuthKey: %v", err)
	}
	if _, err := s.ConsumeAuthKey(ctx, "kh"); !errors.Is(err, ErrAuthKeyRevoked) {
		t.Fatalf("ConsumeAuthKey: %v", err)
	}
	alloc := func() (string, string) { return "100.64.0.9", "fd7a:115c:a1e0::9" }
	n := Node{MachineKey: "mkey:1", NodeKey: "nodekey:1", Hostname: "h", GivenName: "h"}
	if _, _, err := s.CreateNode(ctx, n, "kh", alloc); !errors.Is(err, ErrAuthKeyRevoked) {
		t.Fatalf("CreateNode with the key: %v", err)
	}
	n.UserID = u.ID
	if _, _, err := s.CreateNode(ctx, n, "", alloc); !errors.Is(err, ErrUserDisabled) {
		t.Fatalf("CreateNode for the user (interactive login): %v", err)
	}
	if _, err := s.SetUserDisabled(ctx, u.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateNode(ctx, n, "kh", alloc); err != nil {
		t.Fatalf("CreateNode after enable: %v", err)
	}
}

func TestWorkspaceQuota(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	u, _ := s.CreateUser(ctx, "bob", "h", RoleMember)
	_, v, _ := buildFixture(t, s, 0)
	q := Quota{MaxWorkspaces: 2, MaxExternalAgents: 1}
	if _, err := s.CreateWorkspaceWithin(ctx, Workspace{UUID: "1", OwnerID: u.ID, Name: "e1"}, q); err != nil {
		t.Fatal(err)
	}
	var qe *QuotaError
	if _, err := s.CreateWorkspaceWithin(ctx, Workspace{UUID: "2", OwnerID: u.ID, Name: "e2"}, q); !errors.As(err, &qe) || qe.What != "external agents" {
		t.Fatalf("second external: %v", err)
	}
	tw := Workspace{UUID: "3", OwnerID: u.ID, Name: "t1", TemplateID: v.TemplateID, TemplateVersionID: v.ID}
	if _, err := s.CreateWorkspaceWithin(ctx, tw, q); err != nil {
		t.Fatal(err)
	}
	tw.UUID, tw.Name = "4", "t2"
	if _, err := s.CreateWorkspaceWithin(ctx, tw, q); !errors.As(err, &qe) || qe.What != "workspaces" || qe.Limit != 2 {
		t.Fatalf("third workspace: %v", err)
	}
	if _, err := s.CreateWorkspaceWithin(ctx, tw, Quota{}); err != nil {
		t.Fatalf("unlimited: %v", err)
	}
}
