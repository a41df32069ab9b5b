package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devmesh/devmesh/coordinator/client"
)

const paramsCLITemplate = cliTemplateHeader + `
data "devmesh_parameter" "image" {
  name        = "image"
  description = "Base image."
  option {
    name  = "Debian"
    value = "debian"
  }
  option {
    name  = "Ubuntu"
    value = "ubuntu"
  }
}

data "devmesh_parameter" "disk" {
  name    = "disk"
  type    = "number"
  default = "10"
  mutable = true
}

resource "terraform_data" "vm" {
  input = "${data.devmesh_parameter.image.value}:${data.devmesh_parameter.disk.value}"
}
`

// TestCLIParameters: push shows the parameters; create without a
// terminal names a missing required parameter; --param-file (YAML) and
// --param give values that show and show -o json report; a new active
// version marks the workspace outdated in list and show; update carries
// the values, changes a mutable one and refuses an immutable one; a
// template in use cannot be deleted; a bad declaration is refused at push
// with file and line.
func TestCLIParameters(t *testing.T) {
	cliEnv(t)
	srv := provisioningServer(t)
	mustRun(t, cliAdminPW+"\n", "login", srv.URL, "--username", "root", "--password-stdin")
	dir := writeTemplate(t, paramsCLITemplate)
	stdout, stderr := mustRun(t, "", "templates", "push", "p", "-d", dir)
	if !strings.Contains(stderr, "Warning: the template has no devmesh_agent resource") {
		t.Errorf("push of a template without an agent: no warning in %q", stderr)
	}
	if !regexpLine(stdout, `^\s+image\s+string\s+\(required\)\s+no\s+Base image\.$`) || !regexpLine(stdout, `^\s+disk\s+number\s+"10"\s+yes`) {
		t.Errorf("push output:\n%s", stdout)
	}

	_, _, err := runCLI(t, "", "create", "dev", "--template", "p", "--no-wait")
	if err == nil || !strings.Contains(err.Error(), `parameter "image" (string: Base image.) is required: give it with --param image=VALUE`) {
		t.Fatalf("create without the required parameter: %v", err)
	}
	pf := filepath.Join(t.TempDir(), "params.yaml")
	os.WriteFile(pf, []byte("image: debian\ndisk: 20\n"), 0o600)
	mustRun(t, "", "create", "dev", "--template", "p", "--param-file", pf, "--param", "disk=30")
	stdout, _ = mustRun(t, "", "show", "dev")
	if !regexpLine(stdout, `^  image:\s+debian$`) || !regexpLine(stdout, `^  disk:\s+30$`) {
		t.Errorf("show:\n%s", stdout)
	}
	stdout, _ = mustRun(t, "", "show", "dev", "-o", "json")
	var ws client.Workspace
	if err := json.Unmarshal([]byte(stdout), &ws); err != nil || ws.Parameters["image"] != "debian" || ws.Parameters["disk"] != "30" {
		t.Fatalf("show -o json: %v\n%s", err, stdout)
	}

	mustRun(t, "", "templates", "push", "p", "-d", dir, "-m", "v2")
	if out, _ := mustRun(t, "", "list"); !regexpLine(out, `^dev\s+p v1 \(outdated\)\s+started`) {
		t.Errorf("list after a push:\n%s", out)
	}
	if out, _ := mustRun(t, "", "show", "dev"); !strings.Contains(out, "Outdated: the active version is 2 (`devmesh update dev` moves to it)") {
		t.Errorf("show after a push:\n%s", out)
	}
	_, _, err = runCLI(t, "", "update", "dev", "--param", "image=ubuntu")
	if client.ErrorCode(err) != client.CodeImmutableParameter || !strings.Contains(err.Error(), `"image": is immutable`) {
		t.Fatalf("immutable change: %v", err)
	}
	mustRun(t, "", "update", "dev", "--param", "disk=40")
	stdout, _ = mustRun(t, "", "list")
	if !regexpLine(stdout, `^dev\s+p v2\s+started`) {
		t.Errorf("list after update:\n%s", stdout)
	}
	if out, _ := mustRun(t, "", "show", "dev"); !regexpLine(out, `^  image:\s+debian$`) || !regexpLine(out, `^  disk:\s+40$`) {
		t.Errorf("show after update:\n%s", out)
	}

	mustRun(t, "", "templates", "versions", "activate", "p", "1")
	if out, _ := mustRun(t, "", "list"); !regexpLine(out, `^dev\s+p v2 \(outdated\)`) {
		t.Errorf("list after activating v1:\n%s", out)
	}
	stdout, _ = mustRun(t, "", "create", "dev2", "--template", "p", "--param", "image=ubuntu", "-o", "json")
	var created client.CreatedWorkspace
	if err := json.Unmarshal([]byte(stdout), &created); err != nil || created.Workspace.Name != "dev2" ||
		created.Build == nil || created.Build.Status != client.BuildSucceeded || created.Workspace.Parameters["image"] != "ubuntu" {
		t.Errorf("create --template -o json: %v\n%s", err, stdout)
	}
	if _, _, err := runCLI(t, "", "templates", "delete", "p"); client.ErrorCode(err) != client.CodeTemplateInUse {
		t.Errorf("delete of a template in use: %v", err)
	}

	bad := writeTemplate(t, cliTemplateHeader+"\ndata \"devmesh_parameter\" \"x\" {\n  name    = \"x\"\n  type    = \"number\"\n  default = \"ten\"\n}\n")
	_, _, err = runCLI(t, "", "templates", "push", "p", "-d", bad)
	if client.ErrorCode(err) != client.CodeBadTemplate || !strings.Contains(err.Error(), "main.tf:11: data.devmesh_parameter.x: default \"ten\"") {
		t.Errorf("push of a bad declaration: %v", err)
	}
}
