package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
)

// TestCLICreateFailingTemplate: `devmesh create --template` of a template
// whose apply fails exits non-zero with terraform's error in the log it
// printed; the workspace stays, shows the failed build, its build log is
// there, and `devmesh delete` removes it.
func TestCLICreateFailingTemplate(t *testing.T) {
	cliEnv(t)
	srv := provisioningServer(t)
	mustRun(t, cliAdminPW+"\n", "login", srv.URL, "--username", "root", "--password-stdin")
	mustRun(t, "", "templates", "push", "broken", "-d", writeTemplate(t, cliTemplateHeader+`
resource "terraform_data" "broken" {
  provisioner "local-exec" {
    command = "echo the-disk-is-full >&2; exit 1"
  }
}
`))
	stdout, stderr, err := runCLI(t, "", "create", "bad", "--template", "broken")
	if err == nil || !strings.Contains(err.Error(), "build #1 (start) of bad failed: terraform apply failed") ||
		!strings.Contains(stderr, "the-disk-is-full") || strings.Contains(stdout, "ready") {
		t.Fatalf("create of a failing template: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	out, _ := mustRun(t, "", "show", "bad")
	for _, re := range []string{`^State:\s+start failed$`, `^Latest build:\s+#1 start failed in `, `^  Reason:\s+terraform apply failed`} {
		if !regexpLine(out, re) {
			t.Errorf("show lacks %s:\n%s", re, out)
		}
	}
	if out, _ := mustRun(t, "", "list"); !regexpLine(out, `^bad\s+broken v1\s+start failed\s+-`) {
		t.Errorf("list:\n%s", out)
	}
	if out, _ := mustRun(t, "", "logs", "bad", "--build", "latest"); !strings.Contains(out, "the-disk-is-full") {
		t.Errorf("logs --build latest:\n%s", out)
	}
	if _, _, err := runCLI(t, "", "logs", "bad"); err == nil || !strings.Contains(err.Error(), "devmesh logs bad --build 1") {
		t.Errorf("agent logs of a workspace without agents: %v", err)
	}
	stdout, _ = mustRun(t, "", "delete", "bad")
	if !strings.Contains(stdout, "Build #2 (delete) of bad succeeded") {
		t.Errorf("delete: %q", stdout)
	}
	if n := countWorkspaces(t, srv); n != 0 {
		t.Fatalf("%d workspaces after delete", n)
	}
}

// TestCLICreateWaits: --no-wait returns once the build is queued; without
// it create waits for the agents after the build, and says so when one
// does not connect in --agent-timeout (this template's agent never runs).
func TestCLICreateWaits(t *testing.T) {
	cliEnv(t)
	srv := provisioningServer(t)
	mustRun(t, cliAdminPW+"\n", "login", srv.URL, "--username", "root", "--password-stdin")
	mustRun(t, "", "templates", "push", "base", "-d", writeTemplate(t, cliTemplate))

	stdout, stderr := mustRun(t, "", "create", "quick", "--template", "base", "--var", "region=eu", "--no-wait")
	if !strings.Contains(stdout, "Build #1 (start) of quick is pending") || !strings.Contains(stderr, "Created workspace quick from template base (version 1)") {
		t.Errorf("create --no-wait: %q / %q", stdout, stderr)
	}
	out, _ := mustRun(t, "", "list", "-o", "json")
	var list []client.Workspace
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].LatestBuild == nil || list[0].Template != "base" {
		t.Fatalf("list -o json: %v\n%s", err, out)
	}

	start := time.Now()
	stdout, stderr, err := runCLI(t, "", "create", "dev", "--template", "base", "--var", "region=eu", "--agent-timeout", "700ms")
	if err == nil || !strings.Contains(err.Error(), "the build succeeded, but agent main of dev did not connect within 700ms") ||
		!strings.Contains(stdout, "Build #1 (start) of dev succeeded") || !strings.Contains(stderr, "Waiting for agent main to connect...") {
		t.Fatalf("create with an agent that never connects: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("create took %v", took)
	}
	// --no-wait follows the delete no further than its queueing either.
	stdout, _ = mustRun(t, "", "delete", "dev", "--no-wait")
	if !strings.Contains(stdout, "(delete) of dev is pending") {
		t.Errorf("delete --no-wait: %q", stdout)
	}
}
