package builds

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/provision"
)

// The child process of TestCrashRecovery: a coordinator's build queue on
// the database and work root these name, until it is killed.
const (
	childDBEnv   = "DEVMESH_BUILDS_TEST_CHILD_DB"
	childRootEnv = "DEVMESH_BUILDS_TEST_CHILD_ROOT"
)

func runChildQueue() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child queue:", err)
		return 1
	}
	st, err := store.OpenSQLite(context.Background(), os.Getenv(childDBEnv))
	if err != nil {
		return fail(err)
	}
	bin, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	r, err := provision.New(provision.Options{WorkRoot: os.Getenv(childRootEnv), DevmeshBinary: bin})
	if err != nil {
		return fail(err)
	}
	q, err := New(Options{Store: st, Runner: r, AccessURL: testAccessURL, Workers: 1, PollInterval: 100 * time.Millisecond})
	if err != nil {
		return fail(err)
	}
	if err := q.Start(context.Background()); err != nil {
		return fail(err)
	}
	select {} // until killed
}

// crashTemplate creates terraform_data.base at once, and on a build that
// finds the file var.slow_file, a resource that takes a minute.
const crashTemplate = header + `
variable "slow_file" {
  type = string
}

resource "terraform_data" "base" {}

resource "terraform_data" "slow" {
  count = fileexists(var.slow_file) ? 1 : 0
  provisioner "local-exec" {
    command = "sleep 60"
  }
}
`

// TestCrashRecovery kills (SIGKILL) a coordinator's build queue in the
// middle of a build. The next start marks that build failed, interrupted,
// kills the terraform it left running, and keeps the state stored before
// the crash; a new build then succeeds and carries on from it.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, func(o *Options) { o.Workers = 1 })
	slowFile := filepath.Join(t.TempDir(), "slow")
	v := e.pushFiles("crash", map[string]string{"main.tf": crashTemplate})
	ws := e.workspace("dev", v, map[string]string{"slow_file": slowFile})
	e.mustSucceed(e.build(ws, provision.TransitionStart))
	before, _ := e.st.WorkspaceState(ctx, ws.ID)
	baseID := resourceID(t, before, "base")
	e.q.Close() // this coordinator stops; the child takes over

	childRoot := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childDBEnv+"="+e.dbPath, childRootEnv+"="+childRoot)
	var out strings.Builder
	child.Stdout, child.Stderr = &out, &out
	if err := os.WriteFile(slowFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := e.st.EnqueueBuild(ctx, store.Build{WorkspaceID: ws.ID, Transition: "start", TemplateVersionID: v.ID, InitiatorID: e.user.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	e.waitFor(b, "to be in the slow resource", func(b store.Build) bool {
		return strings.Contains(e.logText(b), "terraform_data.slow[0]: Creating...")
	})
	tfPID := terraformPID(t, childRoot)
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	if got, _ := e.st.BuildByID(ctx, b.ID); got.Status != store.BuildRunning {
		t.Fatalf("after the kill the build is %s", got.Status)
	}

	// The coordinator starts again on the same data.
	r := newTestRunner(t, childRoot)
	e.q = e.startQueue(r)
	got, _ := e.st.BuildByID(ctx, b.ID)
	if got.Status != store.BuildFailed || got.Reason != store.ReasonInterrupted {
		t.Fatalf("interrupted build: %s (%s)", got.Status, got.Reason)
	}
	if log := e.logText(got); !strings.Contains(log, "coordinator stopped while this build ran") {
		t.Errorf("log of the interrupted build:\n%s", log)
	}
	waitGone(t, tfPID)
	if ents, _ := os.ReadDir(childRoot); len(ents) != 0 {
		t.Errorf("left in the work root: %v", ents)
	}
	after, _ := e.st.WorkspaceState(ctx, ws.ID)
	if string(after) != string(before) {
		t.Errorf("the state changed across the crash")
	}

	// A retry works and builds on the kept state.
	os.Remove(slowFile)
	retry := e.build(ws, provision.TransitionStart)
	e.mustSucceed(retry)
	final, _ := e.st.WorkspaceState(ctx, ws.ID)
	if id := resourceID(t, final, "base"); id != baseID {
		t.Errorf("terraform_data.base was replaced (%s, was %s): state lost", id, baseID)
	}
}

// resourceID returns the id of terraform_data.NAME in a state file.
func resourceID(t *testing.T, state []byte, name string) string {
	t.Helper()
	s := string(state)
	i := strings.Index(s, `"name": "`+name+`"`)
	if i < 0 {
		t.Fatalf("no terraform_data.%s in the state:\n%s", name, s)
	}
	j := strings.Index(s[i:], `"id": "`)
	if j < 0 {
		t.Fatalf("no id for terraform_data.%s", name)
	}
	rest := s[i+j+len(`"id": "`):]
	return rest[:strings.IndexByte(rest, '"')]
}

// terraformPID returns the pid of the terraform running in the only
// build directory under root.
func terraformPID(t *testing.T, root string) int {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(root, "build-*", "terraform.pid"))
	if len(matches) != 1 {
		t.Fatalf("terraform pid files: %v", matches)
	}
	b, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestCloseInterrupts: closing the queue during a build that does not stop
// within the close timeout kills its terraform, so nothing it started
// outlives the queue, and the build ends failed, interrupted.
func TestCloseInterrupts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	v := e.pushFiles("sleepy", map[string]string{"main.tf": header + `
resource "terraform_data" "sleepy" {
  provisioner "local-exec" {
    command = "trap '' INT; sleep 60"
  }
}
`})
	ws := e.workspace("dev", v, nil)
	e.q.Close()
	root := t.TempDir()
	r, err := provision.New(provision.Options{WorkRoot: root, DevmeshBinary: os.Args[0], InterruptGrace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	e.q = e.startQueue(r, func(o *Options) { o.CloseTimeout = 300 * time.Millisecond })
	b := e.enqueue(ws, provision.TransitionStart)
	e.waitFor(b, "to sleep", func(b store.Build) bool {
		return strings.Contains(e.logText(b), "terraform_data.sleepy: Creating...")
	})
	tfPID := terraformPID(t, root)
	start := time.Now()
	e.q.Close()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close took %v", took)
	}
	waitGone(t, tfPID)
	got := e.waitFor(b, "to end", store.Build.Finished)
	if got.Status != store.BuildFailed || got.Reason != store.ReasonInterrupted {
		t.Errorf("build after close: %s (%s)", got.Status, got.Reason)
	}
}
