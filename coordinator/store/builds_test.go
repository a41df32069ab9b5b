package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// buildFixture makes a user, a template version and n workspaces.
func buildFixture(t *testing.T, s *Store, n int) (User, TemplateVersion, []Workspace) {
	t.Helper()
	ctx := context.Background()
	u, err := s.CreateUser(ctx, "alice", "h", RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	tpl, v, err := s.PushTemplateVersion(ctx, "base", TemplateVersion{Archive: []byte("a"), ArchiveHash: "a", CreatedBy: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	var ws []Workspace
	for i := 0; i < n; i++ {
		w, err := s.CreateWorkspace(ctx, Workspace{UUID: fmt.Sprintf("w%d", i), OwnerID: u.ID, Name: fmt.Sprintf("ws%d", i),
			TemplateID: tpl.ID, TemplateVersionID: v.ID})
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	return u, v, ws
}

func enqueue(t *testing.T, s *Store, w Workspace, transition string) Build {
	t.Helper()
	b, err := s.EnqueueBuild(context.Background(), Build{WorkspaceID: w.ID, Transition: transition, TemplateVersionID: w.TemplateVersionID})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEnqueueAndClaim(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	u, v, ws := buildFixture(t, s, 2)
	a1, err := s.EnqueueBuild(ctx, Build{WorkspaceID: ws[0].ID, Transition: "start", TemplateVersionID: v.ID, InitiatorID: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	if a1.Number != 1 || a1.Status != BuildPending || a1.TemplateVersion != 1 || a1.InitiatorName != "alice" || a1.WorkspaceName != "ws0" {
		t.Fatalf("enqueued: %+v", a1)
	}
	// One start or stop at a time per workspace; a delete may queue.
	var busy *BuildInProgressError
	if _, err := s.EnqueueBuild(ctx, Build{WorkspaceID: ws[0].ID, Transition: "stop"}); !errors.As(err, &busy) || busy.Build.ID != a1.ID {
		t.Fatalf("stop while a start is pending: %v, want BuildInProgressError naming build 1", err)
	}
	a2 := enqueue(t, s, ws[0], "delete")
	b1 := enqueue(t, s, ws[1], "start")
	if a2.Number != 2 || b1.Number != 1 {
		t.Fatalf("numbers: %d %d", a2.Number, b1.Number)
	}

	// The oldest claimable build first; a workspace with an active build
	// has nothing claimable.
	c, err := s.ClaimBuild(ctx)
	if err != nil || c.ID != a1.ID || c.Status != BuildRunning || c.StartedAt.IsZero() {
		t.Fatalf("first claim: %+v %v", c, err)
	}
	if c, err := s.ClaimBuild(ctx); err != nil || c.ID != b1.ID {
		t.Fatalf("second claim: %+v %v", c, err)
	}
	if c, err := s.ClaimBuild(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("third claim: %+v %v, want ErrNotFound (ws0 has a running build)", c, err)
	}
	// The database refuses a second active build of a workspace even if
	// the claim query were wrong.
	if err := s.SetBuildStatus(ctx, a2.ID, BuildPending, BuildRunning, ""); !isUniqueViolation(err) {
		t.Fatalf("second running build of ws0: %v", err)
	}
	if err := s.SetBuildStatus(ctx, a1.ID, BuildPending, BuildRunning, ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale status change: %v", err)
	}
	if err := s.SetBuildStatus(ctx, 999, BuildPending, BuildRunning, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing build: %v", err)
	}
	if err := s.SetBuildStatus(ctx, a1.ID, BuildRunning, BuildSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	if c, err := s.ClaimBuild(ctx); err != nil || c.ID != a2.ID {
		t.Fatalf("claim after ws0's build finished: %+v %v", c, err)
	}
	done, _ := s.BuildByID(ctx, a1.ID)
	if !done.Finished() || done.FinishedAt.IsZero() {
		t.Fatalf("finished build: %+v", done)
	}
	if l, err := s.LatestBuild(ctx, ws[0].ID); err != nil || l.ID != a2.ID {
		t.Fatalf("latest: %+v %v", l, err)
	}
	if list, err := s.ListBuilds(ctx, ws[0].ID); err != nil || len(list) != 2 || list[0].Number != 1 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if b, err := s.BuildByNumber(ctx, ws[0].ID, 2); err != nil || b.ID != a2.ID {
		t.Fatalf("by number: %+v %v", b, err)
	}
}

// TestClaimConcurrent claims from many goroutines at once: each build is
// claimed once, a workspace never has two running builds, and each
// workspace's builds run in number order.
func TestClaimConcurrent(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	_, _, ws := buildFixture(t, s, 5)
	const perWS = 2 // a start, and a delete queued behind it
	for _, tr := range []string{"start", "delete"} {
		for _, w := range ws {
			enqueue(t, s, w, tr)
		}
	}
	var mu sync.Mutex
	running := map[int64]bool{} // workspace -> has a running build
	order := map[int64][]int{}  // workspace -> numbers in claim order
	claimed := 0
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for idle := 0; idle < 200; {
				b, err := s.ClaimBuild(ctx)
				if errors.Is(err, ErrNotFound) {
					mu.Lock()
					all := claimed == len(ws)*perWS
					mu.Unlock()
					if all {
						return
					}
					idle++
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if running[b.WorkspaceID] {
					t.Errorf("workspace %d has two running builds", b.WorkspaceID)
				}
				running[b.WorkspaceID] = true
				order[b.WorkspaceID] = append(order[b.WorkspaceID], b.Number)
				claimed++
				mu.Unlock()
				mu.Lock()
				running[b.WorkspaceID] = false
				mu.Unlock()
				if err := s.SetBuildStatus(ctx, b.ID, BuildRunning, BuildSucceeded, ""); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if claimed != len(ws)*perWS {
		t.Fatalf("claimed %d builds, want %d", claimed, len(ws)*perWS)
	}
	for id, nums := range order {
		for i, n := range nums {
			if n != i+1 {
				t.Errorf("workspace %d ran builds in order %v", id, nums)
				break
			}
		}
	}
}

func TestFailInterruptedBuilds(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	_, _, ws := buildFixture(t, s, 3)
	r := enqueue(t, s, ws[0], "start")
	c := enqueue(t, s, ws[1], "start")
	p := enqueue(t, s, ws[2], "start")
	s.ClaimBuild(ctx)
	s.ClaimBuild(ctx)
	if err := s.SetBuildStatus(ctx, c.ID, BuildRunning, BuildCanceling, "canceled by alice"); err != nil {
		t.Fatal(err)
	}
	got, err := s.FailInterruptedBuilds(ctx)
	if err != nil || len(got) != 2 || got[0].ID != r.ID || got[1].Status != BuildCanceling {
		t.Fatalf("interrupted: %+v %v", got, err)
	}
	for _, b := range []Build{r, c} {
		b, _ = s.BuildByID(ctx, b.ID)
		if b.Status != BuildFailed || b.Reason != ReasonInterrupted || b.FinishedAt.IsZero() {
			t.Errorf("after restart: %+v", b)
		}
	}
	if b, _ := s.BuildByID(ctx, p.ID); b.Status != BuildPending {
		t.Errorf("pending build touched: %+v", b)
	}
	if again, _ := s.FailInterruptedBuilds(ctx); len(again) != 0 {
		t.Errorf("second call: %+v", again)
	}
}

func TestEnqueueAfterDelete(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	_, _, ws := buildFixture(t, s, 1)
	d := enqueue(t, s, ws[0], "delete")
	if _, err := s.EnqueueBuild(ctx, Build{WorkspaceID: ws[0].ID, Transition: "start"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("start after a pending delete: %v", err)
	}
	s.ClaimBuild(ctx)
	if err := s.SetBuildStatus(ctx, d.ID, BuildRunning, BuildFailed, "boom"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnqueueBuild(ctx, Build{WorkspaceID: ws[0].ID, Transition: "start"}); err != nil {
		t.Fatalf("start after a failed delete: %v", err)
	}
}

func TestBuildLogs(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	_, _, ws := buildFixture(t, s, 1)
	b := enqueue(t, s, ws[0], "start")
	if err := s.AppendBuildLogs(ctx, b.ID, []BuildLog{{Stage: "init", Output: "one"}, {Stage: "apply", Level: "error", Output: "two"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendBuildLogs(ctx, b.ID, []BuildLog{{Output: "three"}}); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListBuildLogs(ctx, b.ID, 0, 100)
	if err != nil || len(all) != 3 || all[0].Level != "info" || all[1].Level != "error" || all[2].Output != "three" {
		t.Fatalf("logs: %+v %v", all, err)
	}
	if more, _ := s.ListBuildLogs(ctx, b.ID, all[0].ID, 1); len(more) != 1 || more[0].Output != "two" {
		t.Fatalf("after the first, limit 1: %+v", more)
	}
}

func TestFinishBuildAgents(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	u, _, ws := buildFixture(t, s, 1)
	w := ws[0]
	finish := func(agents []Agent, meta []MetadataItem) []Agent {
		t.Helper()
		b := enqueue(t, s, w, "start")
		if _, err := s.ClaimBuild(ctx); err != nil {
			t.Fatal(err)
		}
		removed, err := s.FinishBuild(ctx, b.ID, w.ID, BuildOutcome{From: BuildRunning, To: BuildSucceeded,
			SetAgents: agents != nil, Agents: agents, SetMetadata: meta != nil, Metadata: meta})
		if err != nil {
			t.Fatal(err)
		}
		return removed
	}
	removed := finish([]Agent{{UUID: "a", Name: "main", TokenHash: "t1", OS: "linux"}, {UUID: "b", Name: "db", TokenHash: "t2"}},
		[]MetadataItem{{Resource: "vm", Key: "cpus", Value: "2"}, {Resource: "vm", Key: "pw", Value: "x", Sensitive: true}})
	if len(removed) != 0 {
		t.Fatalf("removed on first start: %+v", removed)
	}
	main1, _ := s.AgentByTokenHash(ctx, "t1")
	s.SetAgentLifecycle(ctx, main1.ID, LifecycleReady)
	key, _ := s.CreateAuthKey(ctx, AuthKey{UserID: u.ID, Prefix: "p", SecretHash: "k", AgentID: main1.ID})
	old, _ := s.AgentByTokenHash(ctx, "t2")
	s.CreateAuthKey(ctx, AuthKey{UserID: u.ID, Prefix: "q", SecretHash: "k2", AgentID: old.ID})

	// "a" keeps its token: kept, updated, still ready. "b" has a new token:
	// replaced, and its auth key revoked.
	removed = finish([]Agent{{UUID: "a", Name: "main", TokenHash: "t1", OS: "darwin"}, {UUID: "b", Name: "db", TokenHash: "t3"}}, nil)
	if len(removed) != 1 || removed[0].ID != old.ID {
		t.Fatalf("removed: %+v", removed)
	}
	if a, err := s.AgentByTokenHash(ctx, "t1"); err != nil || a.ID != main1.ID || a.OS != "darwin" || a.Lifecycle != LifecycleReady {
		t.Fatalf("kept agent: %+v %v", a, err)
	}
	if _, err := s.AgentByTokenHash(ctx, "t2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old token: %v", err)
	}
	if _, err := s.CheckAuthKey(ctx, "k2"); !errors.Is(err, ErrAuthKeyRevoked) {
		t.Fatalf("removed agent's auth key: %v", err)
	}
	if _, err := s.CheckAuthKey(ctx, "k"); err != nil || key.ID == 0 {
		t.Fatalf("kept agent's auth key: %v", err)
	}
	meta, _ := s.ListWorkspaceMetadata(ctx, w.ID)
	if len(meta) != 2 || meta[0].Key != "cpus" || !meta[1].Sensitive {
		t.Fatalf("metadata kept when not set: %+v", meta)
	}

	// Stop: no agents.
	removed = finish([]Agent{}, []MetadataItem{})
	if len(removed) != 2 {
		t.Fatalf("removed on stop: %+v", removed)
	}
	if list, _ := s.ListAgents(ctx, w.ID); len(list) != 0 {
		t.Fatalf("agents after stop: %+v", list)
	}
	if meta, _ := s.ListWorkspaceMetadata(ctx, w.ID); len(meta) != 0 {
		t.Fatalf("metadata after stop: %+v", meta)
	}
	b, _ := s.LatestBuild(ctx, w.ID)
	if _, err := s.FinishBuild(ctx, b.ID, w.ID, BuildOutcome{From: BuildRunning, To: BuildFailed}); !errors.Is(err, ErrConflict) {
		t.Fatalf("finishing a finished build: %v", err)
	}
}
