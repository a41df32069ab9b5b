package builds_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
)

const metadataTemplate = fastTemplate + `
resource "devmesh_metadata" "vm" {
  resource_id = devmesh_agent.main.id
  item {
    key   = "size"
    value = var.size
  }
  item {
    key       = "password"
    value     = "hunter2"
    sensitive = true
  }
}
`

// TestTemplateWorkspaceAPI: creating a workspace from a template answers
// 201 with the workspace and its queued first build; the workspace shows
// its template, latest build and metadata (a sensitive value to admins
// only); deleting it queues a delete build (202), after which it is gone.
func TestTemplateWorkspaceAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := apiServer(t, 0)
	tok := srv.Bootstrap(t, "root", adminPW)
	admin := srv.Client(t, tok)
	bob := srv.Client(t, srv.CreateUser(t, tok, "bob", memberPW, client.RoleMember))
	if _, err := admin.PushTemplate(ctx, "base", packDir(t, map[string]string{"main.tf": metadataTemplate}), ""); err != nil {
		t.Fatal(err)
	}

	created, err := bob.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", Template: "base", Variables: map[string]string{"size": "3"}})
	if err != nil {
		t.Fatal(err)
	}
	ws, b := created.Workspace, created.Build
	if created.AgentToken != "" || b == nil || b.Number != 1 || b.Transition != client.TransitionStart || b.Workspace != "dev" ||
		ws.Template != "base" || ws.TemplateVersion != 1 || ws.LatestBuild == nil || ws.LatestBuild.Number != 1 || len(ws.Agents) != 0 {
		t.Fatalf("created %+v, build %+v", ws, b)
	}
	if done, err := bob.FollowBuild(ctx, "dev", 1, 0, func(client.BuildLog) {}); err != nil || done.Status != client.BuildSucceeded {
		t.Fatalf("first build: %+v, %v", done, err)
	}
	ws, err = bob.Workspace(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	wantMeta := []client.MetadataItem{
		{Resource: "devmesh_agent.main", Key: "size", Value: "3"},
		{Resource: "devmesh_agent.main", Key: "password", Sensitive: true, Hidden: true},
	}
	if ws.LatestBuild.Status != client.BuildSucceeded || len(ws.Agents) != 1 || !sameMetadata(ws.Metadata, wantMeta) {
		t.Fatalf("after the build: %+v, metadata %+v", ws, ws.Metadata)
	}
	raw, _ := json.Marshal(ws)
	if strings.Contains(string(raw), "hunter2") {
		t.Fatalf("a member saw a sensitive value: %s", raw)
	}
	list, err := bob.ListWorkspaces(ctx)
	if err != nil || len(list) != 1 || list[0].Template != "base" || list[0].LatestBuild == nil || len(list[0].Metadata) != 2 {
		t.Fatalf("list: %+v, %v", list, err)
	}

	// An admin sees the values of their own workspace's sensitive items.
	if _, err := admin.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "adm", Template: "base"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.FollowBuild(ctx, "adm", 1, 0, func(client.BuildLog) {}); err != nil {
		t.Fatal(err)
	}
	aw, err := admin.Workspace(ctx, "adm")
	if err != nil || len(aw.Metadata) != 2 || aw.Metadata[1].Value != "hunter2" || aw.Metadata[1].Hidden {
		t.Fatalf("admin's metadata: %+v, %v", aw.Metadata, err)
	}

	// Delete: a build, then the workspace goes.
	del, err := bob.DeleteWorkspace(ctx, "dev")
	if err != nil || del == nil || del.Transition != client.TransitionDelete || del.Number != 2 {
		t.Fatalf("delete: %+v, %v", del, err)
	}
	_, err = bob.DeleteWorkspace(ctx, "dev")
	wantCode(t, err, http.StatusConflict, client.CodeConflict)
	if done, err := bob.FollowBuild(ctx, "dev", del.Number, 0, func(client.BuildLog) {}); err != nil || done.Status != client.BuildSucceeded {
		t.Fatalf("delete build: %+v, %v", done, err)
	}
	// The workspace goes DeleteGrace after its delete build succeeded.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err = bob.Workspace(ctx, "dev")
		if client.ErrorCode(err) == client.CodeNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the workspace is still there 10s after its delete build: %v", err)
		}
	}
}

func sameMetadata(got, want []client.MetadataItem) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}
