package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/devmesh/devmesh/coordinator/api"
	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/builds"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/provision"
)

// provisioningServer starts the API with a build queue whose devmesh
// binary is this test binary (see TestMain).
func provisioningServer(t *testing.T) *apitest.Server {
	t.Helper()
	if _, err := provision.CheckTerraform(context.Background(), ""); err != nil {
		t.Skipf("these tests run real terraform: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return apitest.New(t, func(o *api.Options) {
		r, err := provision.New(provision.Options{WorkRoot: t.TempDir(), DevmeshBinary: self, InterruptGrace: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		q, err := builds.New(builds.Options{Store: o.Store, Runner: r, AccessURL: "http://127.0.0.1:1",
			LogFlushInterval: 50 * time.Millisecond, DeleteGrace: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		o.Builds = q
	})
}

// writeTemplate writes a template directory holding main.tf.
func writeTemplate(t *testing.T, mainTF string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(mainTF), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const cliTemplateHeader = `terraform {
  required_providers {
    devmesh = {
      source = "registry.devmesh.local/devmesh/devmesh"
    }
  }
}

data "devmesh_workspace" "me" {}
`

const cliTemplate = cliTemplateHeader + `
variable "size" {
  type        = number
  default     = 2
  description = "Number of widgets."
}

variable "region" {
  type = string
}

resource "devmesh_agent" "main" {}

resource "terraform_data" "vm" {
  count = data.devmesh_workspace.me.start_count
  input = var.size
}
`

// templateWorkspace creates a workspace from the active version of a
// template directly in the store (the create command is tested with the
// workspace commands).
func templateWorkspace(t *testing.T, st *store.Store, owner, name, template string, vars map[string]string) {
	t.Helper()
	ctx := context.Background()
	u, err := st.UserByName(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := st.TemplateByName(ctx, template)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(vars)
	if _, err := st.CreateWorkspace(ctx, store.Workspace{UUID: uuid.NewString(), OwnerID: u.ID, Name: name,
		TemplateID: tpl.ID, TemplateVersionID: tpl.ActiveVersionID, Variables: string(b)}); err != nil {
		t.Fatal(err)
	}
}

func TestCLITemplates(t *testing.T) {
	cliEnv(t)
	srv := provisioningServer(t)
	mustRun(t, cliAdminPW+"\n", "login", srv.URL, "--username", "root", "--password-stdin")
	dir := writeTemplate(t, cliTemplate)

	stdout, stderr := mustRun(t, "", "templates", "push", "base", "-d", dir, "--message", "first cut")
	if !strings.Contains(stdout, "Template base version 1 is now active.") || !strings.Contains(stderr, "validates it with terraform") ||
		strings.Contains(stderr, "Warning") {
		t.Fatalf("push: %q / %q", stdout, stderr)
	}
	for _, want := range []string{"size", "number", "2", "Number of widgets.", "region", "(required)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("push output lacks %q:\n%s", want, stdout)
		}
	}
	mustRun(t, "", "templates", "push", "base", "-d", dir)
	stdout, _ = mustRun(t, "", "templates", "list")
	if !strings.Contains(stdout, "base") || !strings.Contains(stdout, "v2") || !strings.Contains(stdout, "root") {
		t.Errorf("list:\n%s", stdout)
	}
	stdout, _ = mustRun(t, "", "templates", "versions", "base", "-o", "json")
	var vs []client.TemplateVersion
	if err := json.Unmarshal([]byte(stdout), &vs); err != nil || len(vs) != 2 || vs[0].Message != "first cut" || !vs[1].Active {
		t.Fatalf("versions -o json: %v\n%s", err, stdout)
	}
	out := filepath.Join(t.TempDir(), "pulled")
	mustRun(t, "", "templates", "pull", "base", "--version", "1", "-d", out)
	if b, err := os.ReadFile(filepath.Join(out, "main.tf")); err != nil || string(b) != cliTemplate {
		t.Fatalf("pulled main.tf: %v", err)
	}
	if _, _, err := runCLI(t, "", "templates", "pull", "base", "-d", out); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("pull into a non-empty directory: %v", err)
	}

	// A template with a syntax error is refused with terraform's message.
	bad := writeTemplate(t, cliTemplateHeader+"resource \"terraform_data\" \"x\" {\n  input = \n}\n")
	_, _, err := runCLI(t, "", "templates", "push", "base", "-d", bad)
	if client.ErrorCode(err) != client.CodeBadTemplate || !strings.Contains(err.Error(), "main.tf") {
		t.Fatalf("push of a broken template: %v", err)
	}
	stdout, _ = mustRun(t, "", "templates", "versions", "base")
	if strings.Contains(stdout, "v3") {
		t.Errorf("the broken template was stored:\n%s", stdout)
	}
}

func TestCLIBuilds(t *testing.T) {
	cliEnv(t)
	t.Setenv("DEVMESH_AGENT_TIMEOUT", "0") // this template's agent never runs
	srv := provisioningServer(t)
	mustRun(t, cliAdminPW+"\n", "login", srv.URL, "--username", "root", "--password-stdin")
	mustRun(t, "", "templates", "push", "base", "-d", writeTemplate(t, cliTemplate))
	templateWorkspace(t, srv.Store, "root", "dev", "base", map[string]string{"region": "eu"})

	stdout, stderr := mustRun(t, "", "start", "dev")
	if !strings.Contains(stdout, "Build #1 (start) of dev succeeded") || !strings.Contains(stdout, "the workspace is started") {
		t.Errorf("start stdout: %q", stdout)
	}
	for _, want := range []string{"Queued build #1 (start) of dev.", "==> terraform init", "==> terraform apply", "Apply complete!"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("start stderr lacks %q:\n%s", want, stderr)
		}
	}
	stdout, _ = mustRun(t, "", "stop", "dev", "--no-wait")
	if !strings.Contains(stdout, "Build #2 (stop) of dev is pending") {
		t.Errorf("stop --no-wait: %q", stdout)
	}
	_, stderr = mustRun(t, "", "builds", "dev", "--follow", "2")
	if !strings.Contains(stderr, "Apply complete!") {
		t.Errorf("builds --follow:\n%s", stderr)
	}
	stdout, _ = mustRun(t, "", "restart", "dev")
	if !strings.Contains(stdout, "Build #3 (stop) of dev succeeded") || !strings.Contains(stdout, "Build #4 (start) of dev succeeded") {
		t.Errorf("restart: %q", stdout)
	}
	stdout, _ = mustRun(t, "", "builds", "dev")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 5 || !strings.Contains(lines[4], "#4") || !strings.Contains(lines[4], "succeeded") || !strings.Contains(lines[1], "root") {
		t.Errorf("builds:\n%s", stdout)
	}
	_, _, err := runCLI(t, "", "cancel", "dev")
	if client.ErrorCode(err) != client.CodeBuildFinished {
		t.Errorf("cancel a finished build: %v", err)
	}

	// A failing build makes the command fail with the reason.
	fail := cliTemplateHeader + `
resource "terraform_data" "broken" {
  provisioner "local-exec" {
    command = "echo the-disk-is-full >&2; exit 1"
  }
}
`
	mustRun(t, "", "templates", "push", "broken", "-d", writeTemplate(t, fail))
	templateWorkspace(t, srv.Store, "root", "bad", "broken", nil)
	_, stderr, err = runCLI(t, "", "start", "bad")
	if err == nil || !strings.Contains(err.Error(), "build #1 (start) of bad failed: terraform apply failed") || !strings.Contains(stderr, "the-disk-is-full") {
		t.Errorf("failing start: %v\n%s", err, stderr)
	}
}

// TestBuildWaiterInterrupt: Ctrl-C while following asks, on a terminal,
// whether to cancel; yes cancels and follows the build to its end, no (or
// no terminal) leaves it running.
func TestBuildWaiterInterrupt(t *testing.T) {
	cliEnv(t)
	srv := provisioningServer(t)
	tok := srv.Bootstrap(t, "root", cliAdminPW)
	c := srv.Client(t, tok)
	slow := cliTemplateHeader + `
resource "terraform_data" "slow" {
  triggers_replace = [timestamp()]
  provisioner "local-exec" {
    command = "sleep 60"
  }
}
`
	archive, err := provision.Pack(writeTemplate(t, slow), 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.PushTemplate(ctx, "slow", archive, ""); err != nil {
		t.Fatal(err)
	}
	templateWorkspace(t, srv.Store, "root", "dev", "slow", nil)
	b, err := c.CreateBuild(ctx, "dev", client.TransitionStart)
	if err != nil {
		t.Fatal(err)
	}
	interrupted, cancel := context.WithCancel(ctx)
	cancel() // as if Ctrl-C came at once
	var out, errOut strings.Builder
	waiter := func(answer string, interactive bool) *buildWaiter {
		return &buildWaiter{c: c, ws: "dev", out: &out, errOut: &errOut, in: bufio.NewReader(strings.NewReader(answer)), interactive: interactive}
	}
	for _, w := range []*buildWaiter{waiter("", false), waiter("n\n", true)} {
		err := w.wait(interrupted, b)
		if err == nil || !strings.Contains(err.Error(), "goes on") {
			t.Errorf("interrupted, not canceled: %v", err)
		}
	}
	if cur, _ := c.Build(ctx, "dev", b.Number); cur.Finished() {
		t.Fatalf("the build ended without a cancel: %+v", cur)
	}
	err = waiter("y\n", true).wait(interrupted, b)
	if err == nil || !strings.Contains(err.Error(), "canceled: canceled by root") {
		t.Errorf("interrupted and canceled: %v", err)
	}
	if !strings.Contains(errOut.String(), "Cancel build #1 (start) of dev? [y/N]") {
		t.Errorf("prompt: %q", errOut.String())
	}
}
