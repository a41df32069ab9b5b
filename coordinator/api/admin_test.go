package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/devmesh/devmesh/coordinator/api"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/control"
)

// reachAll is the control plane of a server run with --admins-reach-all.
type reachAll struct{ *control.Server }

func (reachAll) Policy() control.Policy { return control.Policy{AdminsReachAll: true} }

// TestAdminAddressing: admins list every workspace with its owner and
// address any as OWNER/WS (show, logs, builds, delete); members are
// refused OWNER/WS of others (403) and never find another user's
// workspace by name (404); without --admins-reach-all an admin's view of
// another user's workspace says it cannot be connected to.
func TestAdminAddressing(t *testing.T) {
	f := newWSFixture(t) // alice (admin) owns dev; bob is a member
	ctx := context.Background()
	if _, err := f.bob.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "box", External: true}); err != nil {
		t.Fatal(err)
	}

	all, err := f.alice.ListAllWorkspaces(ctx)
	if err != nil || len(all) != 2 || all[0].Owner != "alice" || all[1].Owner != "bob" || all[1].Name != "box" {
		t.Fatalf("list --all: %+v, %v", all, err)
	}
	mine, err := f.alice.ListWorkspaces(ctx)
	if err != nil || len(mine) != 1 || mine[0].Name != "dev" {
		t.Fatalf("list: %+v, %v", mine, err)
	}
	_, err = f.bob.ListAllWorkspaces(ctx)
	if e := wantAPIError(t, err, http.StatusForbidden, client.CodeForbidden); !strings.Contains(e.Message, "needs the admin role") {
		t.Errorf("member's list --all: %q", e.Message)
	}

	ws, err := f.alice.Workspace(ctx, "bob/box")
	if err != nil || ws.Name != "box" || ws.Owner != "bob" || len(ws.Agents) != 1 {
		t.Fatalf("admin show bob/box: %+v, %v", ws, err)
	}
	if !strings.Contains(ws.Unreachable, "--admins-reach-all") {
		t.Errorf("unreachable = %q", ws.Unreachable)
	}
	if own, err := f.alice.Workspace(ctx, "alice/dev"); err != nil || own.Name != "dev" || own.Unreachable != "" {
		t.Errorf("alice/dev by alice: %+v, %v", own, err)
	}
	if _, err := f.alice.AgentLogs(ctx, "bob/box", "main", 0); err != nil {
		t.Errorf("admin logs bob/box: %v", err)
	}
	_, err = f.alice.Workspace(ctx, "bob/nope")
	if e := wantAPIError(t, err, http.StatusNotFound, client.CodeNotFound); !strings.Contains(e.Message, `bob has no workspace called "nope"`) {
		t.Errorf("missing: %q", e.Message)
	}
	wantAPIError(t, mustErr(f.alice.Workspace(ctx, "carol/box")), http.StatusNotFound, client.CodeNotFound)

	// Members: OWNER/WS of another user is refused, whether it exists or
	// not; their own OWNER/WS works; another's plain name is not found.
	for _, name := range []string{"alice/dev", "alice/nope"} {
		_, err := f.bob.Workspace(ctx, name)
		if e := wantAPIError(t, err, http.StatusForbidden, client.CodeForbidden); !strings.Contains(e.Message, "only admins address other users' workspaces") {
			t.Errorf("bob shows %s: %q", name, e.Message)
		}
	}
	wantAPIError(t, mustErr(f.bob.DeleteWorkspace(ctx, "alice/dev")), http.StatusForbidden, client.CodeForbidden)
	wantAPIError(t, mustErr(f.bob.Workspace(ctx, "dev")), http.StatusNotFound, client.CodeNotFound)
	if _, err := f.bob.Workspace(ctx, "bob/box"); err != nil {
		t.Errorf("bob/box by bob: %v", err)
	}

	// An admin deletes another user's workspace; their own stays.
	if _, err := f.alice.DeleteWorkspace(ctx, "bob/box"); err != nil {
		t.Fatal(err)
	}
	wantAPIError(t, mustErr(f.bob.Workspace(ctx, "box")), http.StatusNotFound, client.CodeNotFound)
	if _, err := f.alice.Workspace(ctx, "dev"); err != nil {
		t.Errorf("alice's dev after deleting bob/box: %v", err)
	}
}

func TestAdminAddressingReachAll(t *testing.T) {
	f := newWSFixture(t, func(o *api.Options) { o.Control = reachAll{o.Control.(*control.Server)} })
	ctx := context.Background()
	if _, err := f.bob.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "box", External: true}); err != nil {
		t.Fatal(err)
	}
	if ws, err := f.alice.Workspace(ctx, "bob/box"); err != nil || ws.Unreachable != "" {
		t.Fatalf("with --admins-reach-all: %+v, %v", ws, err)
	}
}

func mustErr[T any](_ T, err error) error { return err }
