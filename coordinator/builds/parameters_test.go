package builds_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/devmesh/devmesh/coordinator/client"
)

// paramTemplate declares parameters and records their values in metadata,
// so a test sees what terraform got.
const paramTemplate = `
terraform {
  required_providers {
    devmesh = {
      source = "registry.devmesh.local/devmesh/devmesh"
    }
  }
}

data "devmesh_parameter" "image" {
  name        = "image"
  description = "Base image."
}

data "devmesh_parameter" "disk" {
  name    = "disk"
  type    = "number"
  default = "10"
  mutable = true
  validation {
    min       = 1
    max       = 100
    monotonic = "increasing"
  }
}

resource "devmesh_agent" "main" {}

resource "devmesh_metadata" "params" {
  resource_id = devmesh_agent.main.id
  item {
    key   = "image"
    value = data.devmesh_parameter.image.value
  }
  item {
    key   = "disk"
    value = data.devmesh_parameter.disk.value
  }
}
`

func metadataValue(ws client.Workspace, key string) string {
	for _, m := range ws.Metadata {
		if m.Key == key {
			return m.Value
		}
	}
	return ""
}

// TestParametersAndUpdate: values are checked before a build is queued,
// reach terraform, are stored per build and shown; an update rebuilds on
// the active version carrying them, accepts a change to a mutable
// parameter and refuses one to an immutable parameter; list and show
// mark an outdated workspace; a template with workspaces cannot be
// archived or deleted, one without can.
func TestParametersAndUpdate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := apiServer(t, 0)
	tok := srv.Bootstrap(t, "root", adminPW)
	admin := srv.Client(t, tok)
	bob := srv.Client(t, srv.CreateUser(t, tok, "bob", memberPW, client.RoleMember))
	v1, err := admin.PushTemplate(ctx, "p", packDir(t, map[string]string{"main.tf": paramTemplate}), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(v1.Parameters) != 2 || v1.Parameters[0].Name != "image" || !v1.Parameters[0].Required() || v1.Parameters[1].Type != "number" {
		t.Fatalf("parameters: %+v", v1.Parameters)
	}

	// Refused before anything is queued.
	for _, tt := range []struct {
		params map[string]string
		want   string
	}{
		{map[string]string{"disk": "5"}, `parameter "image": required but no value given (Base image.)`},
		{map[string]string{"image": "debian", "disk": "500"}, "greater than the maximum 100"},
		{map[string]string{"image": "debian", "disk": "${1+1}"}, "is not a number"},
		{map[string]string{"image": "debian", "colour": "red"}, `parameter "colour": the template declares no such parameter`},
	} {
		_, err := bob.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", Template: "p", Parameters: tt.params})
		if e := wantCode(t, err, http.StatusBadRequest, client.CodeBadParameter); !strings.Contains(e.Message, tt.want) {
			t.Errorf("create with %v: %q, want it to contain %q", tt.params, e.Message, tt.want)
		}
	}
	if n := countRows(t, srv, "builds"); n != 0 {
		t.Fatalf("%d builds queued by refused creates", n)
	}

	created, err := bob.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", Template: "p", Parameters: map[string]string{"image": "debian"}})
	if err != nil {
		t.Fatal(err)
	}
	follow(t, bob, "dev", created.Build.Number)
	ws, err := bob.Workspace(ctx, "dev")
	if err != nil || metadataValue(ws, "image") != "debian" || metadataValue(ws, "disk") != "10" ||
		ws.Parameters["image"] != "debian" || ws.Parameters["disk"] != "10" || ws.Outdated {
		t.Fatalf("after create: %+v, %v", ws, err)
	}

	// A new version: the workspace is outdated until updated.
	v2src := strings.Replace(paramTemplate, `key   = "disk"`, `key   = "disk_gb"`, 1)
	if _, err := admin.PushTemplate(ctx, "p", packDir(t, map[string]string{"main.tf": v2src}), ""); err != nil {
		t.Fatal(err)
	}
	list, err := bob.ListWorkspaces(ctx)
	if err != nil || len(list) != 1 || !list[0].Outdated || list[0].TemplateVersion != 1 || list[0].ActiveVersion != 2 {
		t.Fatalf("list after a push: %+v, %v", list, err)
	}
	_, err = bob.UpdateWorkspace(ctx, "dev", client.UpdateWorkspaceRequest{Parameters: map[string]string{"image": "ubuntu"}})
	if e := wantCode(t, err, http.StatusBadRequest, client.CodeImmutableParameter); !strings.Contains(e.Message, `"image": is immutable`) {
		t.Errorf("immutable change: %q", e.Message)
	}
	_, err = bob.UpdateWorkspace(ctx, "dev", client.UpdateWorkspaceRequest{Parameters: map[string]string{"disk": "5"}})
	wantCode(t, err, http.StatusBadRequest, client.CodeBadParameter) // monotonic
	b, err := bob.UpdateWorkspace(ctx, "dev", client.UpdateWorkspaceRequest{Parameters: map[string]string{"disk": "20"}})
	if err != nil || b.TemplateVersion != 2 || b.Transition != client.TransitionStart {
		t.Fatalf("update: %+v, %v", b, err)
	}
	follow(t, bob, "dev", b.Number)
	ws, err = bob.Workspace(ctx, "dev")
	if err != nil || ws.Outdated || ws.TemplateVersion != 2 || metadataValue(ws, "image") != "debian" || metadataValue(ws, "disk_gb") != "20" {
		t.Fatalf("after update: %+v, %v", ws, err)
	}
	// A stop carries the values too.
	stop, err := bob.CreateBuild(ctx, "dev", client.TransitionStop)
	if err != nil {
		t.Fatal(err)
	}
	follow(t, bob, "dev", stop.Number)
	if ws, err = bob.Workspace(ctx, "dev"); err != nil || ws.Parameters["image"] != "debian" || ws.Parameters["disk"] != "20" {
		t.Fatalf("parameters after a stop: %+v, %v", ws.Parameters, err)
	}

	// Activating version 1 again makes the workspace outdated.
	if v, err := admin.ActivateTemplateVersion(ctx, "p", 1); err != nil || !v.Active || v.Version != 1 {
		t.Fatalf("activate: %+v, %v", v, err)
	}
	wantCode(t, mustErr(admin.ActivateTemplateVersion(ctx, "p", 9)), http.StatusNotFound, client.CodeNotFound)
	wantCode(t, mustErr(bob.ActivateTemplateVersion(ctx, "p", 2)), http.StatusForbidden, client.CodeForbidden)
	if ws, err = bob.Workspace(ctx, "dev"); err != nil || !ws.Outdated || ws.ActiveVersion != 1 {
		t.Fatalf("after activating v1: %+v, %v", ws, err)
	}

	// In use: neither archive nor delete.
	e := wantCode(t, admin.ArchiveTemplate(ctx, "p"), http.StatusConflict, client.CodeTemplateInUse)
	if !strings.Contains(e.Message, "while workspaces use it") {
		t.Errorf("archive in use: %q", e.Message)
	}
	wantCode(t, admin.DeleteTemplate(ctx, "p"), http.StatusConflict, client.CodeTemplateInUse)

	// Unused: archived (hidden, no new workspaces), then deleted.
	if _, err := admin.PushTemplate(ctx, "spare", packDir(t, map[string]string{"main.tf": fastTemplate}), ""); err != nil {
		t.Fatal(err)
	}
	if err := admin.ArchiveTemplate(ctx, "spare"); err != nil {
		t.Fatal(err)
	}
	if tl, err := bob.ListTemplates(ctx); err != nil || len(tl) != 1 || tl[0].Name != "p" {
		t.Fatalf("templates after archiving spare: %+v, %v", tl, err)
	}
	wantCode(t, mustErr(bob.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "x", Template: "spare"})), http.StatusBadRequest, client.CodeBadRequest)
	if err := admin.DeleteTemplate(ctx, "spare"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, mustErr(admin.TemplateVersions(ctx, "spare")), http.StatusNotFound, client.CodeNotFound)
}

func follow(t *testing.T, c *client.Client, ws string, number int) {
	t.Helper()
	if done, err := c.FollowBuild(context.Background(), ws, number, 0, func(client.BuildLog) {}); err != nil || done.Status != client.BuildSucceeded {
		t.Fatalf("build %d of %s: %+v, %v", number, ws, done, err)
	}
}
