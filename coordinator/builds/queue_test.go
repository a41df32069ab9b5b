package builds

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/secret"
	"github.com/devmesh/devmesh/provision"
	"github.com/devmesh/devmesh/provision/tfprovider/tfprovidertest"
)

// waitAgent waits for the stand-in agent in dir (a local template
// workspace's home) other than the one with pid old to report.
func waitAgent(t *testing.T, dir string, old int) tfprovidertest.FakeAgentReport {
	return tfprovidertest.WaitFakeAgent(t, dir, old)
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); tfprovidertest.ProcessAlive(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs", pid)
		}
	}
}

// TestLocalLifecycle takes a workspace of the quickstart template through
// start, stop, start and delete: agents are registered with the hashes of
// the tokens their processes run with, stop revokes them and keeps the
// state, the next start mints new tokens, and delete removes everything.
func TestLocalLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	v := e.pushDir("local", filepath.Join("..", "..", "examples", "templates", "local"))
	root := t.TempDir()
	ws := e.workspace("dev", v, map[string]string{"workspaces_dir": root})
	home := filepath.Join(root, ws.UUID, "home")

	// Start: the agent runs with a token whose hash is registered.
	b := e.build(ws, provision.TransitionStart)
	e.mustSucceed(b)
	first := waitAgent(t, home, 0)
	if first.URL != testAccessURL {
		t.Errorf("agent URL %q", first.URL)
	}
	agent, err := e.st.AgentByTokenHash(ctx, secret.Hash(first.Token))
	if err != nil || agent.WorkspaceID != ws.ID || agent.Name != "main" || agent.Dir != home || agent.BuildID != b.ID {
		t.Fatalf("registered agent: %+v, %v", agent, err)
	}
	meta, _ := e.st.ListWorkspaceMetadata(ctx, ws.ID)
	if len(meta) != 1 || meta[0].Resource != "devmesh_agent.main" || meta[0].Key != "directory" {
		t.Errorf("metadata: %+v", meta)
	}
	log := e.logText(b)
	for _, want := range []string{"build #1 of workspace \"dev\": start", "Terraform has been successfully initialized", "Apply complete!", "build succeeded"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, first.Token) {
		t.Error("the agent token is in the build log")
	}
	state1, _ := e.st.WorkspaceState(ctx, ws.ID)

	// A second start changes nothing: the same agent stays registered.
	e.mustSucceed(e.build(ws, provision.TransitionStart))
	if again, err := e.st.AgentByTokenHash(ctx, secret.Hash(first.Token)); err != nil || again.ID != agent.ID {
		t.Fatalf("agent after a second start: %+v, %v", again, err)
	}

	// Stop: the agent process and registration go, the state stays.
	e.mustSucceed(e.build(ws, provision.TransitionStop))
	waitGone(t, first.PID)
	if _, err := e.st.AgentByTokenHash(ctx, secret.Hash(first.Token)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token after stop: %v", err)
	}
	if !slices.Contains(e.removedAgents(), agent.ID) {
		t.Errorf("nodes of the stopped agent not removed: %v", e.removedAgents())
	}
	state2, _ := e.st.WorkspaceState(ctx, ws.ID)
	if len(state2) == 0 || !strings.Contains(string(state2), `"terraform_data"`) || string(state2) == string(state1) {
		t.Errorf("state after stop: %d bytes", len(state2))
	}
	if _, err := os.Stat(home); err != nil {
		t.Errorf("stop removed the workspace directory: %v", err)
	}

	// Start again: a new token; the old one stays refused.
	e.mustSucceed(e.build(ws, provision.TransitionStart))
	second := waitAgent(t, home, first.PID)
	if second.Token == first.Token {
		t.Fatal("start after stop kept the old token")
	}
	if _, err := e.st.AgentByTokenHash(ctx, secret.Hash(first.Token)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old token after restart: %v", err)
	}
	agent2, err := e.st.AgentByTokenHash(ctx, secret.Hash(second.Token))
	if err != nil || agent2.UUID != agent.UUID {
		t.Errorf("new agent: %+v, %v (same terraform id %q expected)", agent2, err, agent.UUID)
	}

	// Delete: the process, the directory and the workspace go.
	d := e.build(ws, provision.TransitionDelete)
	e.mustSucceed(d)
	waitGone(t, second.PID)
	if _, err := os.Stat(filepath.Join(root, ws.UUID)); !os.IsNotExist(err) {
		t.Errorf("workspace directory after delete: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err := e.st.WorkspaceByID(ctx, ws.ID)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workspace after delete: %v", err)
		}
	}
	if _, err := e.st.AgentByTokenHash(ctx, secret.Hash(second.Token)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token after delete: %v", err)
	}
}

// TestFailingTemplate: a build whose apply fails is failed with
// terraform's error in its log and reason, its state is kept, and the
// workspace can still be deleted.
func TestFailingTemplate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	v := e.pushFiles("failing", map[string]string{"main.tf": header + `
resource "terraform_data" "ok" {}

resource "terraform_data" "broken" {
  depends_on = [terraform_data.ok]
  provisioner "local-exec" {
    command = "echo something-went-wrong >&2; exit 3"
  }
}
`})
	ws := e.workspace("dev", v, nil)
	b := e.build(ws, provision.TransitionStart)
	if b.Status != store.BuildFailed || !strings.Contains(b.Reason, "terraform apply failed") {
		t.Fatalf("build: %s (%s)", b.Status, b.Reason)
	}
	log := e.logText(b)
	for _, want := range []string{"something-went-wrong", "exit status 3", "build failed"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	st, _ := e.st.WorkspaceState(ctx, ws.ID)
	if !strings.Contains(string(st), `"ok"`) {
		t.Errorf("the state of the failed build was not kept: %s", st)
	}
	if agents, _ := e.st.ListAgents(ctx, ws.ID); len(agents) != 0 {
		t.Errorf("agents after a failed build: %+v", agents)
	}
	e.mustSucceed(e.build(ws, provision.TransitionDelete))
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := e.st.WorkspaceByID(ctx, ws.ID); errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("workspace not deleted")
		}
	}
}

// slowTemplate takes about a second on every build.
const slowTemplate = header + `
resource "terraform_data" "slow" {
  triggers_replace = [timestamp()]
  provisioner "local-exec" {
    command = "sleep 1"
  }
}
`

// TestConcurrentBuilds: builds of different workspaces run in parallel;
// a workspace has one start or stop queued or running at a time, so its
// builds run one after another, in order.
func TestConcurrentBuilds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := e.pushFiles("slow", map[string]string{"main.tf": slowTemplate})
	a, b := e.workspace("a", v, nil), e.workspace("b", v, nil)
	a1, b1 := e.enqueue(a, provision.TransitionStart), e.enqueue(b, provision.TransitionStart)
	var busy *store.BuildInProgressError
	if _, err := e.q.Enqueue(context.Background(), Request{Workspace: a, Transition: provision.TransitionStart}); !errors.As(err, &busy) {
		t.Fatalf("second start of a while one is queued: %v", err)
	}
	done := map[string]store.Build{}
	for name, bld := range map[string]store.Build{"a1": a1, "b1": b1} {
		done[name] = e.wait(bld)
		e.mustSucceed(done[name])
	}
	a2, b2 := e.enqueue(a, provision.TransitionStart), e.enqueue(b, provision.TransitionStart)
	for name, bld := range map[string]store.Build{"a2": a2, "b2": b2} {
		done[name] = e.wait(bld)
		e.mustSucceed(done[name])
	}
	overlap := func(x, y store.Build) bool {
		return x.StartedAt.Before(y.FinishedAt) && y.StartedAt.Before(x.FinishedAt)
	}
	if !overlap(done["a1"], done["b1"]) {
		t.Errorf("builds of different workspaces did not overlap: a1 %v-%v, b1 %v-%v",
			done["a1"].StartedAt, done["a1"].FinishedAt, done["b1"].StartedAt, done["b1"].FinishedAt)
	}
	for _, p := range [][2]string{{"a1", "a2"}, {"b1", "b2"}} {
		first, second := done[p[0]], done[p[1]]
		if second.StartedAt.Before(first.FinishedAt) {
			t.Errorf("%s started (%v) before %s finished (%v)", p[1], second.StartedAt, p[0], first.FinishedAt)
		}
	}
}

// TestCancel: a running build is interrupted and ends canceled; a queued
// one ends at once; a finished one cannot be canceled.
func TestCancel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	v := e.pushFiles("sleepy", map[string]string{"main.tf": header + `
resource "terraform_data" "sleepy" {
  provisioner "local-exec" {
    command = "sleep 60"
  }
}
`})
	ws := e.workspace("dev", v, nil)
	running := e.enqueue(ws, provision.TransitionStart)
	queued := e.enqueue(ws, provision.TransitionDelete) // the one build that may queue behind a start
	e.waitFor(running, "to sleep", func(b store.Build) bool {
		return b.Status == store.BuildRunning && strings.Contains(e.logText(b), "terraform_data.sleepy: Creating...")
	})
	c, err := e.q.Cancel(ctx, queued.ID, "alice")
	if err != nil || c.Status != store.BuildCanceled || c.Reason != "canceled by alice" {
		t.Fatalf("cancel queued: %+v, %v", c, err)
	}
	start := time.Now()
	c, err = e.q.Cancel(ctx, running.ID, "alice")
	if err != nil || c.Status != store.BuildCanceling {
		t.Fatalf("cancel running: %+v, %v", c, err)
	}
	if c, err := e.q.Cancel(ctx, running.ID, "bob"); err != nil || c.Status != store.BuildCanceling {
		t.Fatalf("cancel again: %+v, %v", c, err)
	}
	got := e.wait(running)
	if got.Status != store.BuildCanceled || got.Reason != "canceled by alice" {
		t.Fatalf("canceled build: %s (%s); log:\n%s", got.Status, got.Reason, e.logText(got))
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("cancel took %v", took)
	}
	if _, err := e.q.Cancel(ctx, running.ID, "alice"); !errors.Is(err, ErrFinished) {
		t.Errorf("cancel a finished build: %v", err)
	}
	// The workspace is still manageable.
	if b := e.build(ws, provision.TransitionDelete); b.Status != store.BuildSucceeded {
		t.Errorf("delete after cancel: %s (%s)\n%s", b.Status, b.Reason, e.logText(b))
	}
}

func TestEnqueueRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	ext, err := e.st.CreateWorkspace(ctx, store.Workspace{UUID: "ext", OwnerID: e.user.ID, Name: "ext"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.q.Enqueue(ctx, Request{Workspace: ext, Transition: provision.TransitionStart}); !errors.Is(err, ErrExternalWorkspace) {
		t.Errorf("external workspace: %v", err)
	}
	v := e.pushFiles("t", map[string]string{"main.tf": slowTemplate})
	ws := e.workspace("dev", v, nil)
	if _, err := e.q.Enqueue(ctx, Request{Workspace: ws, Transition: "restart"}); !errors.Is(err, provision.ErrBadTransition) {
		t.Errorf("bad transition: %v", err)
	}
	e.enqueue(ws, provision.TransitionDelete)
	if _, err := e.q.Enqueue(ctx, Request{Workspace: ws, Transition: provision.TransitionStart}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("start after delete: %v", err)
	}
}
