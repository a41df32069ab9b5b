package builds_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/devmesh/devmesh/coordinator/client"
)

// stateTemplate puts the agent's token in the state (as every template
// does) and, through a sensitive output, in terraform's output handling.
const stateTemplate = fastTemplate + `
output "token" {
  value     = devmesh_agent.main.token
  sensitive = true
}
`

// TestTerraformStateStaysOnTheServer pins who can read a workspace's
// terraform state, which holds its agents' tokens in plaintext: no API
// endpoint serves the state, and nothing derived from it that any user
// can read (workspace views, builds, build logs, templates, nodes) holds
// the token. Another member gets 404 for the owner's workspace, as for
// any resource of another user.
func TestTerraformStateStaysOnTheServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := apiServer(t, 0)
	adminTok := srv.Bootstrap(t, "root", adminPW)
	admin := srv.Client(t, adminTok)
	bobTok := srv.CreateUser(t, adminTok, "bob", memberPW, client.RoleMember)
	bob := srv.Client(t, bobTok)
	carolTok := srv.CreateUser(t, adminTok, "carol", memberPW, client.RoleMember)
	if _, err := admin.PushTemplate(ctx, "base", packDir(t, map[string]string{"main.tf": stateTemplate}), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", Template: "base"}); err != nil {
		t.Fatal(err)
	}
	if done, err := bob.FollowBuild(ctx, "dev", 1, 0, func(client.BuildLog) {}); err != nil || done.Status != client.BuildSucceeded {
		t.Fatalf("build: %+v, %v", done, err)
	}
	token := stateToken(t, srv.DBPath, "dev")

	get := func(tok, path string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	ownPaths := []string{
		"/api/v1/workspaces/dev", "/api/v1/workspaces/dev/builds", "/api/v1/workspaces/dev/builds/1",
		"/api/v1/workspaces/dev/builds/1/logs", "/api/v1/workspaces/dev/builds/latest/logs",
		"/api/v1/workspaces/dev/agents/main/logs",
	}
	paths := append([]string{"/api/v1/workspaces", "/api/v1/templates", "/api/v1/templates/base/versions",
		"/api/v1/templates/base/versions/1/archive", "/api/v1/nodes", "/api/v1/users/me",
		// No endpoint serves the state itself.
		"/api/v1/workspaces/dev/state", "/api/v1/workspaces/dev/builds/1/state", "/api/v1/workspaces/dev/builds/latest/state"}, ownPaths...)
	for _, who := range []struct{ name, tok string }{{"owner", bobTok}, {"member", carolTok}, {"admin", adminTok}} {
		for _, p := range paths {
			status, body := get(who.tok, p)
			if strings.Contains(body, token) {
				t.Errorf("%s: GET %s (%d) shows the agent token from the state", who.name, p, status)
			}
			if strings.HasSuffix(p, "/state") && status != http.StatusNotFound {
				t.Errorf("%s: GET %s = %d, want 404: the state is not served", who.name, p, status)
			}
		}
	}
	// Logs were read above; make sure there were some to read.
	if status, body := get(bobTok, "/api/v1/workspaces/dev/builds/1/logs"); status != http.StatusOK || !strings.Contains(body, "apply") {
		t.Errorf("owner's build log: %d %s", status, body)
	}
	for _, p := range ownPaths {
		if status, body := get(carolTok, p); status != http.StatusNotFound || !strings.Contains(body, client.CodeNotFound) {
			t.Errorf("another member: GET %s = %d %s, want 404 not_found", p, status, body)
		}
	}
}

// stateToken returns the token of the agent in the stored terraform state
// of the workspace called name, failing if there is none.
func stateToken(t *testing.T, dbPath, name string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var raw []byte
	if err := db.QueryRow("SELECT tf_state FROM workspaces WHERE name = ?", name).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var st struct {
		Resources []struct {
			Type      string
			Instances []struct {
				Attributes struct{ Token string }
			}
		}
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	for _, r := range st.Resources {
		if r.Type == "devmesh_agent" && len(r.Instances) > 0 && r.Instances[0].Attributes.Token != "" {
			return r.Instances[0].Attributes.Token
		}
	}
	t.Fatalf("no agent token in the state: %s", raw)
	return ""
}
