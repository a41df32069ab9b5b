package builds

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/provision"
	"github.com/devmesh/devmesh/provision/tfprovider/tfprovidertest"
)

// header declares the devmesh provider, as every template must.
const header = `
terraform {
  required_providers {
    devmesh = {
      source = "registry.devmesh.local/devmesh/devmesh"
    }
  }
}

data "devmesh_workspace" "me" {}
`

// testAccessURL is the coordinator URL builds give templates.
const testAccessURL = "http://127.0.0.1:7070"

// env is a store, a runner and a started queue, as the coordinator wires
// them, plus a user to own things.
type env struct {
	t      *testing.T
	st     *store.Store
	dbPath string
	root   string // work root of the runner
	q      *Queue
	user   store.User

	mu      sync.Mutex
	removed []int64 // agent IDs passed to RemoveAgentNodes
}

// newTestRunner returns a runner whose devmesh binary is this test binary.
func newTestRunner(t testing.TB, root string) *provision.Runner {
	t.Helper()
	if _, err := provision.CheckTerraform(context.Background(), ""); err != nil {
		t.Skipf("these tests run real terraform: %v", err)
	}
	r, err := provision.New(provision.Options{WorkRoot: root, DevmeshBinary: tfprovidertest.Binary(t), InterruptGrace: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newEnv(t *testing.T, configure ...func(*Options)) *env {
	t.Helper()
	e := &env{t: t, dbPath: filepath.Join(t.TempDir(), "devmesh.db"), root: t.TempDir()}
	r := newTestRunner(t, e.root)
	var err error
	if e.st, err = store.OpenSQLite(context.Background(), e.dbPath); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	if e.user, err = e.st.CreateUser(context.Background(), "alice", "h", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	e.q = e.startQueue(r, configure...)
	return e
}

// startQueue starts a queue on e's store; it is closed at the end of the
// test.
func (e *env) startQueue(r *provision.Runner, configure ...func(*Options)) *Queue {
	e.t.Helper()
	o := Options{Store: e.st, Runner: r, AccessURL: testAccessURL, PollInterval: 200 * time.Millisecond,
		LogFlushInterval: 50 * time.Millisecond, DeleteGrace: 10 * time.Millisecond,
		RemoveAgentNodes: func(_ context.Context, id int64) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.removed = append(e.removed, id)
			return nil
		}}
	for _, f := range configure {
		f(&o)
	}
	q, err := New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := q.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { q.Close() })
	return q
}

// removedAgents returns the agent IDs whose nodes were removed so far.
func (e *env) removedAgents() []int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int64(nil), e.removed...)
}

// pushFiles stores a template made of files as a new version of name.
func (e *env) pushFiles(name string, files map[string]string) store.TemplateVersion {
	e.t.Helper()
	dir := e.t.TempDir()
	for n, body := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	return e.pushDir(name, dir)
}

// pushDir stores the template directory dir as a new version of name,
// validated as a push would.
func (e *env) pushDir(name, dir string) store.TemplateVersion {
	e.t.Helper()
	archive, err := provision.Pack(dir, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	mod, err := e.q.ValidateTemplate(context.Background(), archive)
	if err != nil {
		e.t.Fatal(err)
	}
	varsJSON, _ := json.Marshal(mod.Variables)
	paramsJSON, _ := json.Marshal(mod.Parameters)
	_, v, err := e.st.PushTemplateVersion(context.Background(), name, store.TemplateVersion{Archive: archive, ArchiveHash: "x",
		Variables: string(varsJSON), Parameters: string(paramsJSON), CreatedBy: e.user.ID})
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// workspace creates a workspace of e.user from template version v.
func (e *env) workspace(name string, v store.TemplateVersion, vars map[string]string) store.Workspace {
	e.t.Helper()
	if vars == nil {
		vars = map[string]string{}
	}
	b, _ := json.Marshal(vars)
	ws, err := e.st.CreateWorkspace(context.Background(), store.Workspace{UUID: uuid.NewString(), OwnerID: e.user.ID, Name: name,
		TemplateID: v.TemplateID, TemplateVersionID: v.ID, Variables: string(b)})
	if err != nil {
		e.t.Fatal(err)
	}
	return ws
}

// enqueue queues a build.
func (e *env) enqueue(ws store.Workspace, tr provision.Transition) store.Build {
	e.t.Helper()
	b, err := e.q.Enqueue(context.Background(), Request{Workspace: ws, Transition: tr, InitiatorID: e.user.ID})
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// build queues a build and waits for it to finish.
func (e *env) build(ws store.Workspace, tr provision.Transition) store.Build {
	e.t.Helper()
	return e.wait(e.enqueue(ws, tr))
}

// wait waits for b to finish and returns it.
func (e *env) wait(b store.Build) store.Build {
	e.t.Helper()
	return e.waitFor(b, "to finish", store.Build.Finished)
}

// waitFor waits until cond holds for b. A build whose workspace is gone
// is returned as succeeded: only a successful delete removes one.
func (e *env) waitFor(b store.Build, what string, cond func(store.Build) bool) store.Build {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		cur, err := e.st.BuildByID(context.Background(), b.ID)
		if errors.Is(err, store.ErrNotFound) {
			b.Status = store.BuildSucceeded
			return b
		}
		if err != nil {
			e.t.Fatal(err)
		}
		if cond(cur) {
			return cur
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("build #%d (%s) did not get %s; status %s; log:\n%s", b.Number, b.Transition, what, cur.Status, e.logText(b))
		}
		b = cur
		time.Sleep(20 * time.Millisecond)
	}
}

// logText returns a build's log.
func (e *env) logText(b store.Build) string {
	e.t.Helper()
	logs, err := e.st.ListBuildLogs(context.Background(), b.ID, 0, 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	var sb strings.Builder
	for _, l := range logs {
		sb.WriteString(l.Output)
		sb.WriteString("\n")
	}
	return sb.String()
}

// mustSucceed fails the test unless b succeeded.
func (e *env) mustSucceed(b store.Build) {
	e.t.Helper()
	if b.Status != store.BuildSucceeded {
		e.t.Fatalf("build #%d (%s): %s (%s); log:\n%s", b.Number, b.Transition, b.Status, b.Reason, e.logText(b))
	}
}
