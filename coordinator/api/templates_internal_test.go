package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/builds"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/provision"
)

// TestCreateFromTemplate checks the hook the workspace create handler
// calls for template workspaces: variables are checked against the active
// version's, the workspace records them, and its first build is queued.
// The queue is not started: nothing runs terraform here.
func TestCreateFromTemplate(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "devmesh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	self, _ := os.Executable()
	r, err := provision.New(provision.Options{WorkRoot: t.TempDir(), DevmeshBinary: self})
	if err != nil {
		t.Skipf("no terraform: %v", err)
	}
	q, err := builds.New(builds.Options{Store: st, Runner: r, AccessURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	a := &API{store: st, builds: q, log: slog.New(slog.DiscardHandler)}
	alice, _ := st.CreateUser(ctx, "alice", "h", store.RoleAdmin)

	var decls []provision.Variable
	json.Unmarshal([]byte(`[{"name":"region","type":"string","required":true,"literal":true},{"name":"size","type":"number","default":1}]`), &decls)
	vars, _ := json.Marshal(decls)
	if _, _, err := st.PushTemplateVersion(ctx, "base", store.TemplateVersion{Archive: []byte("x"), ArchiveHash: "x", Variables: string(vars), CreatedBy: alice.ID}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		req    client.CreateWorkspaceRequest
		status int
		code   string
		want   string
	}{
		{"no template", client.CreateWorkspaceRequest{Name: "a", Template: "nope"}, http.StatusNotFound, client.CodeNotFound, `no template called "nope"`},
		{"missing", client.CreateWorkspaceRequest{Name: "a", Template: "base"}, http.StatusBadRequest, client.CodeBadVariable, `variable "region": required`},
		{"wrong type", client.CreateWorkspaceRequest{Name: "a", Template: "base", Variables: map[string]string{"region": "eu", "size": "large"}},
			http.StatusBadRequest, client.CodeBadVariable, `variable "size": value "large" is not a valid number`},
		{"unknown", client.CreateWorkspaceRequest{Name: "a", Template: "base", Variables: map[string]string{"region": "eu", "colour": "red"}},
			http.StatusBadRequest, client.CodeBadVariable, `variable "colour"`},
		// Evaluated as HCL, this 217-byte value took 7 s of CPU.
		{"nested for", client.CreateWorkspaceRequest{Name: "a", Template: "base", Variables: map[string]string{"region": "eu", "size": nestedFor(6)}},
			http.StatusBadRequest, client.CodeBadVariable, `variable "size": value "[for xf in`},
		{"function call", client.CreateWorkspaceRequest{Name: "a", Template: "base", Variables: map[string]string{"region": "eu", "size": `parseint("7", 10)`}},
			http.StatusBadRequest, client.CodeBadVariable, `variable "size": value "parseint(\"7\", 10)" is not a valid number: only literal values`},
		{"too long", client.CreateWorkspaceRequest{Name: "a", Template: "base", Variables: map[string]string{"region": strings.Repeat("x", provision.MaxVariableValueBytes+1)}},
			http.StatusBadRequest, client.CodeBadVariable, `variable "region": value is 16385 bytes long`},
	}
	for _, tt := range tests {
		start := time.Now()
		_, _, err := a.createFromTemplate(ctx, alice, tt.req)
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: took %v", tt.name, d)
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.status != tt.status || ae.code != tt.code || !strings.Contains(ae.message, tt.want) {
			t.Errorf("%s: %v, want %d %s %q", tt.name, err, tt.status, tt.code, tt.want)
		}
	}
	if list, _ := st.ListWorkspaces(ctx, alice.ID); len(list) != 0 {
		t.Fatalf("refused creates left workspaces: %+v", list)
	}

	ws, b, err := a.createFromTemplate(ctx, alice, client.CreateWorkspaceRequest{Name: "dev", Template: "base", Variables: map[string]string{"region": "eu"}})
	if err != nil {
		t.Fatal(err)
	}
	if ws.TemplateID == 0 || ws.Variables != `{"region":"eu"}` || b.Number != 1 || b.Transition != "start" || b.Status != store.BuildPending || b.InitiatorID != alice.ID {
		t.Errorf("created %+v with build %+v", ws, b)
	}
	_, _, err = a.createFromTemplate(ctx, alice, client.CreateWorkspaceRequest{Name: "dev", Template: "base", Variables: map[string]string{"region": "eu"}})
	var ae *apiError
	if !errors.As(err, &ae) || ae.status != http.StatusConflict {
		t.Errorf("same name again: %v", err)
	}
	a.builds = nil
	if _, _, err := a.createFromTemplate(ctx, alice, client.CreateWorkspaceRequest{Name: "x", Template: "base"}); !errors.Is(err, errProvisioningDisabled) {
		t.Errorf("without provisioning: %v", err)
	}
}

// nestedFor is a value of n nested for expressions over a list of ten:
// 10^n elements if it were evaluated.
func nestedFor(n int) string {
	s := "0"
	for i := range n {
		s = "[for x" + string(rune('a'+i)) + " in [0,0,0,0,0,0,0,0,0,0] : " + s + "]"
	}
	return s
}
