package provision

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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
`

// newTestRunner returns a Runner whose devmesh binary is this test binary
// (see TestMain). Tests skip when there is no terraform.
func newTestRunner(t *testing.T, opts Options) *Runner {
	t.Helper()
	if _, err := findTerraform(""); err != nil {
		t.Skip("terraform (or tofu) is not on PATH; these tests run real terraform")
	}
	opts.WorkRoot = t.TempDir()
	opts.DevmeshBinary = tfprovidertest.Binary(t)
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// packFiles packs a template made of the given files.
func packFiles(t *testing.T, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, err := Pack(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// logRecorder collects a build's log lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []LogLine
}

func (l *logRecorder) log(line LogLine) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
}

// text returns all messages, one per line.
func (l *logRecorder) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, line := range l.lines {
		b.WriteString(line.Message)
		b.WriteString("\n")
	}
	return b.String()
}

func (l *logRecorder) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, line := range l.lines {
		b.WriteString(line.Message)
		b.Write(line.JSON)
		b.WriteString("\n")
	}
	return b.String()
}

func TestCheckTerraform(t *testing.T) {
	if _, err := findTerraform(""); err != nil {
		t.Skip("terraform is not on PATH")
	}
	ctx := context.Background()
	v, err := CheckTerraform(ctx, "")
	if err != nil || v == "" {
		t.Fatalf("CheckTerraform: %q, %v", v, err)
	}
	if _, err := CheckTerraform(ctx, filepath.Join(t.TempDir(), "no-terraform")); !errors.Is(err, ErrTerraformNotFound) {
		t.Errorf("missing terraform: %v", err)
	}
	old := filepath.Join(t.TempDir(), "terraform")
	script := "#!/bin/sh\necho '{\"terraform_version\":\"1.4.6\",\"platform\":\"linux_amd64\",\"provider_selections\":{},\"terraform_outdated\":false}'\n"
	if err := os.WriteFile(old, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if v, err := CheckTerraform(ctx, old); !errors.Is(err, ErrTerraformTooOld) || v != "1.4.6" {
		t.Errorf("old terraform: %q, %v", v, err)
	}
}

// lifecycleTemplate uses every part of the provider, and records through
// local-exec what the workspace looked like to terraform.
const lifecycleTemplate = header + `
variable "out" {
  type = string
}

variable "size" {
  type    = number
  default = 1
}

data "devmesh_workspace" "me" {}

resource "devmesh_agent" "main" {
  os             = "linux"
  arch           = "arm64"
  env            = { FOO = "bar" }
  startup_script = "echo hi"
  dir            = "/home/dev"
}

resource "devmesh_agent" "second" {
  name = "second"
}

resource "devmesh_metadata" "main" {
  resource_id = devmesh_agent.main.id
  item {
    key   = "size"
    value = tostring(var.size)
  }
  item {
    key       = "password"
    value     = "hunter2"
    sensitive = true
  }
}

resource "terraform_data" "running" {
  count = data.devmesh_workspace.me.start_count
  input = var.out

  provisioner "local-exec" {
    command = "echo \"$WS\" > \"$OUT/running\"; printf %s \"$DEVMESH_AGENT_TOKEN\" > \"$OUT/token\""
    environment = {
      OUT                 = self.input
      WS                  = join(" ", [data.devmesh_workspace.me.id, data.devmesh_workspace.me.name, data.devmesh_workspace.me.owner, data.devmesh_workspace.me.transition, data.devmesh_workspace.me.access_url])
      DEVMESH_AGENT_TOKEN = devmesh_agent.main.token
    }
  }

  provisioner "local-exec" {
    when        = destroy
    command     = "rm \"$OUT/running\""
    environment = { OUT = self.input }
  }
}
`

func TestBuildLifecycle(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Options{})
	out := t.TempDir()
	archive := packFiles(t, map[string]string{"main.tf": lifecycleTemplate})
	ws := Workspace{ID: "6c1f3f5e-0d2c-4f57-9d5b-2d1b7f0c9a11", Name: "dev", Owner: "alice", AccessURL: "http://127.0.0.1:7777/"}
	vars := map[string]string{"out": out, "size": "3", "removed": "ignored"}
	var state []byte
	build := func(tr Transition) (BuildResult, *logRecorder) {
		t.Helper()
		var logs logRecorder
		start := time.Now()
		res, err := r.Build(context.Background(), BuildRequest{
			Archive: archive, Transition: tr, State: state, Variables: vars, Workspace: ws, Log: logs.log,
		})
		if err != nil {
			t.Fatalf("%s: %v\nlog:\n%s", tr, err, logs.text())
		}
		t.Logf("%s build took %v", tr, time.Since(start))
		if len(res.State) == 0 {
			t.Fatalf("%s: no state", tr)
		}
		state = res.State
		return res, &logs
	}
	running := func() string {
		b, err := os.ReadFile(filepath.Join(out, "running"))
		if errors.Is(err, os.ErrNotExist) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}

	// First start: agents get IDs and tokens; the workspace and the token
	// reach local-exec through the environment.
	res, logs := build(TransitionStart)
	if len(res.Agents) != 2 {
		t.Fatalf("agents: %+v", res.Agents)
	}
	main, second := res.Agents[0], res.Agents[1]
	if main.Name != "main" || second.Name != "second" {
		t.Fatalf("agent names: %q, %q", main.Name, second.Name)
	}
	if b, err := hex.DecodeString(main.Token); err != nil || len(b) < 32 {
		t.Errorf("token %q is not 32+ random bytes in hex", main.Token)
	}
	if main.Token == second.Token || main.ID == second.ID || len(main.ID) != 36 {
		t.Errorf("agents not distinct or bad IDs: %q %q", main.ID, second.ID)
	}
	wantMain := Agent{Address: "devmesh_agent.main", ID: main.ID, Name: "main", Token: main.Token, OS: "linux", Arch: "arm64",
		Dir: "/home/dev", StartupScript: "echo hi", Env: map[string]string{"FOO": "bar"}}
	if diff := cmp.Diff(wantMain, main); diff != "" {
		t.Errorf("agent (-want +got):\n%s", diff)
	}
	wantMeta := []Metadata{{Address: "devmesh_metadata.main", ID: res.Metadata[0].ID, ResourceID: main.ID, Items: []MetadataItem{
		{Key: "size", Value: "3"}, {Key: "password", Value: "hunter2", Sensitive: true}}}}
	if diff := cmp.Diff(wantMeta, res.Metadata); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	if want := ws.ID + " dev alice start http://127.0.0.1:7777"; running() != want {
		t.Errorf("workspace seen by terraform: %q, want %q", running(), want)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "token")); string(b) != main.Token {
		t.Errorf("token in local-exec environment: %q", b)
	}
	if strings.Contains(logs.all(), main.Token) || strings.Contains(string(res.State), "DEVMESH_AGENT_TOKEN="+main.Token) {
		t.Error("agent token appears in the build log")
	}
	if !strings.Contains(logs.text(), "Apply complete!") || !strings.Contains(logs.text(), "Terraform has been successfully initialized") {
		t.Errorf("log lacks init or apply output:\n%s", logs.text())
	}
	if !strings.Contains(logs.text(), "ignoring values for variables the template does not declare: [removed]") {
		t.Errorf("log does not mention the dropped variable:\n%s", logs.text())
	}
	assertStages(t, logs, StageInit, StageApply)

	// A second start changes nothing: same agents, same tokens.
	res2, _ := build(TransitionStart)
	if diff := cmp.Diff(res.Agents, res2.Agents); diff != "" {
		t.Errorf("agents changed on a second apply (-first +second):\n%s", diff)
	}

	// Stop: start_count is 0, so the count-ed resource goes, agents stay.
	res3, _ := build(TransitionStop)
	if running() != "" {
		t.Errorf("still running after stop: %q", running())
	}
	if diff := cmp.Diff(res.Agents, res3.Agents); diff != "" {
		t.Errorf("agents changed on stop (-first +stop):\n%s", diff)
	}

	// Start again.
	build(TransitionStart)
	if !strings.HasSuffix(running(), " start http://127.0.0.1:7777") {
		t.Errorf("not running after restart: %q", running())
	}

	// Delete destroys everything.
	res5, logs5 := build(TransitionDelete)
	if len(res5.Agents)+len(res5.Metadata)+len(res5.Resources) != 0 {
		t.Errorf("left after delete: %+v %+v %+v", res5.Agents, res5.Metadata, res5.Resources)
	}
	if running() != "" {
		t.Errorf("still running after delete: %q", running())
	}
	assertStages(t, logs5, StageInit, StageDestroy)
}

// assertStages checks that the log has lines of each stage, and only those
// (besides setup).
func assertStages(t *testing.T, logs *logRecorder, stages ...Stage) {
	t.Helper()
	seen := map[Stage]bool{}
	for _, l := range logs.lines {
		seen[l.Stage] = true
		if l.Time.IsZero() || l.Level == "" {
			t.Errorf("log line without time or level: %+v", l)
		}
	}
	for _, s := range stages {
		if !seen[s] {
			t.Errorf("no log lines for stage %s", s)
		}
		delete(seen, s)
	}
	delete(seen, StageSetup)
	if len(seen) > 0 {
		t.Errorf("unexpected stages %v", seen)
	}
}

func TestBuildFailure(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Options{})
	archive := packFiles(t, map[string]string{"main.tf": header + `
resource "devmesh_agent" "main" {}

resource "terraform_data" "fail" {
  depends_on = [devmesh_agent.main]
  provisioner "local-exec" {
    command = "echo about to fail; exit 3"
  }
}
`})
	var logs logRecorder
	res, err := r.Build(context.Background(), BuildRequest{
		Archive: archive, Transition: TransitionStart, Log: logs.log,
		Workspace: Workspace{ID: "w", Name: "n", Owner: "o", AccessURL: "http://127.0.0.1:1"},
	})
	var tfErr *TerraformError
	if !errors.As(err, &tfErr) || tfErr.Stage != StageApply {
		t.Fatalf("Build: %v, want a *TerraformError from apply", err)
	}
	for _, want := range []string{"local-exec provisioner error", "about to fail", "exit status 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	var errLine bool
	for _, l := range logs.lines {
		if l.Level == LevelError && strings.Contains(l.Message, "local-exec provisioner error") {
			errLine = true
		}
	}
	if !errLine {
		t.Errorf("log has no error line from terraform:\n%s", logs.text())
	}
	// The agent created before the failure is in the state we get back.
	if len(res.State) == 0 || len(res.Agents) != 1 {
		t.Errorf("after failure: state %d bytes, agents %+v", len(res.State), res.Agents)
	}
}

func TestBuildCancel(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Options{InterruptGrace: 10 * time.Second})
	out := t.TempDir()
	archive := packFiles(t, map[string]string{"main.tf": `
resource "terraform_data" "slow" {
  provisioner "local-exec" {
    command     = "sleep 60 & echo $! > \"$OUT/sleep.pid\"; wait"
    environment = { OUT = "` + out + `" }
  }
}
`})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pidFile := filepath.Join(out, "sleep.pid")
	cancelled := make(chan time.Time, 1)
	go func() { // cancel once the provisioner's sleep runs
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
				break
			}
		}
		cancelled <- time.Now()
		cancel()
	}()
	var logs logRecorder
	res, err := r.Build(ctx, BuildRequest{Archive: archive, Transition: TransitionStart, Log: logs.log})
	if took := time.Since(<-cancelled); took > 8*time.Second {
		t.Errorf("Build returned %v after cancel", took)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Build: %v, want context.Canceled\n%s", err, logs.text())
	}
	if len(res.State) == 0 {
		t.Error("no state after cancel")
	}
	// What the provisioner started dies with the build.
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid, 5*time.Second)
}

// waitGone fails the test unless process pid exits within d.
func waitGone(t *testing.T, pid int, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); tfprovidertest.ProcessAlive(pid); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running", pid)
		}
	}
}

func TestBuildBadRequest(t *testing.T) {
	r := newTestRunner(t, Options{MaxArchiveBytes: 2048})
	ok := packFiles(t, map[string]string{"main.tf": "# nothing\n"})
	_, err := r.Build(context.Background(), BuildRequest{Archive: ok, Transition: "restart"})
	if !errors.Is(err, ErrBadTransition) {
		t.Errorf("bad transition: %v", err)
	}
	big := packFiles(t, map[string]string{"main.tf": strings.Repeat("#\n", 2000)})
	_, err = r.Build(context.Background(), BuildRequest{Archive: big, Transition: TransitionStart})
	if !errors.Is(err, ErrArchiveTooLarge) {
		t.Errorf("big archive: %v", err)
	}
	empty := packFiles(t, map[string]string{"README.md": "hi"})
	_, err = r.Build(context.Background(), BuildRequest{Archive: empty, Transition: TransitionStart})
	if !errors.Is(err, ErrEmptyTemplate) {
		t.Errorf("no .tf files: %v", err)
	}
}

func TestValidateTemplate(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Options{})
	ctx := context.Background()

	good := packFiles(t, map[string]string{"main.tf": header + `
resource "devmesh_agent" "main" {
  env = { SIZE = var.size }
}
`, "variables.tf": `
variable "size" {
  type        = number
  description = "Disk size in GB."
}
variable "image" {
  type    = string
  default = "debian:12"
}
variable "tags" {
  type    = list(string)
  default = ["a", "b"]
}
variable "secret" {
  default   = null
  sensitive = true
}
`, lockFileName: authorsLock}) // with a lock file from the author's machine
	mod, err := r.Validate(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	want := []Variable{
		{Name: "image", Type: "string", Default: []byte(`"debian:12"`), literal: true},
		{Name: "secret", Type: "any", Default: []byte(`null`), Sensitive: true, literal: true},
		{Name: "size", Type: "number", Description: "Disk size in GB.", Required: true},
		{Name: "tags", Type: "list(string)", Default: []byte(`["a","b"]`)},
	}
	if diff := cmp.Diff(want, mod.Variables, cmp.AllowUnexported(Variable{})); diff != "" {
		t.Errorf("variables (-want +got):\n%s", diff)
	}

	tests := []struct {
		name  string
		files map[string]string
		want  []string // substrings of the error
		is    error
	}{
		{name: "syntax error", files: map[string]string{"main.tf": header + "resource \"devmesh_agent\" \"main\" {\n  name = \n"},
			want: []string{"main.tf", "line"}},
		{name: "unknown argument", files: map[string]string{"main.tf": header + "resource \"devmesh_agent\" \"main\" {\n  bogus = 1\n}\n"},
			want: []string{"Unsupported argument", "bogus", "main.tf line 10"}},
		{name: "provider validation", files: map[string]string{"main.tf": header + "resource \"devmesh_agent\" \"main\" {\n  os = \"plan9\"\n}\n"},
			want: []string{"must be one of linux, darwin, freebsd, windows"}},
		{name: "bad agent name", files: map[string]string{"main.tf": header + "resource \"devmesh_agent\" \"main\" {\n  name = \"Main Agent\"\n}\n"},
			want: []string{"lowercase letters"}},
		{name: "unknown resource type", files: map[string]string{"main.tf": header + "resource \"devmesh_nope\" \"x\" {}\n"},
			want: []string{"devmesh_nope"}},
		{name: "backend", files: map[string]string{"main.tf": "terraform {\n  backend \"local\" {}\n}\n"},
			is: ErrBackendConfigured, want: []string{"backend block at main.tf:2"}},
		{name: "provider not in the mirror", files: map[string]string{"main.tf": "terraform {\n  required_providers {\n    aws = { source = \"hashicorp/aws\" }\n  }\n}\n"},
			want: []string{"hashicorp/aws"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Validate(ctx, packFiles(t, tt.files))
			if err == nil {
				t.Fatal("Validate succeeded")
			}
			t.Logf("error: %v", err)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestProviderOffline checks that init needs no network: the CLI config
// forbids every other installation method, so a provider missing from the
// mirror fails at once instead of being fetched.
func TestProviderOffline(t *testing.T) {
	r := newTestRunner(t, Options{})
	start := time.Now()
	_, err := r.Validate(context.Background(), packFiles(t, map[string]string{"main.tf": "terraform {\n  required_providers {\n    random = { source = \"hashicorp/random\" }\n  }\n}\n"}))
	if err == nil || !strings.Contains(err.Error(), "hashicorp/random") {
		t.Fatalf("Validate: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("failing init took %v: is it trying the network?", d)
	}
}

// TestBuildKillsStubbornTerraform: a terraform that ignores SIGINT is
// killed once the grace period is over.
func TestBuildKillsStubbornTerraform(t *testing.T) {
	t.Parallel()
	fake := filepath.Join(t.TempDir(), "terraform")
	script := `#!/bin/sh
if [ "$1" = version ]; then
	echo '{"terraform_version":"1.11.4","platform":"linux_amd64","provider_selections":{},"terraform_outdated":false}'
	exit 0
fi
trap '' INT
exec sleep 30
`
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{TerraformPath: fake, WorkRoot: t.TempDir(), DevmeshBinary: tfprovidertest.Binary(t), InterruptGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = r.Build(ctx, BuildRequest{Archive: packFiles(t, map[string]string{"main.tf": "\n"}), Transition: TransitionStart})
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Build: %v, want context.DeadlineExceeded", err)
	}
	if took < 1400*time.Millisecond || took > 6*time.Second {
		t.Errorf("Build returned after %v; want the deadline plus about the 1s grace", took)
	}
}
