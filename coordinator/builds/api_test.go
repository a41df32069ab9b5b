package builds_test

import (
	"archive/tar"
	"bytes"
	"context"
	"database/sql"
	"net/http"
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
	"github.com/devmesh/devmesh/provision/tfprovider/tfprovidertest"
)

// The API side of templates and builds, through the typed client against
// a real API server with a real build queue (this package's TestMain
// serves the devmesh provider).

const (
	adminPW  = "admin-password-1"
	memberPW = "member-password-1"
)

// apiServer starts the API with a build queue whose runner accepts
// archives up to maxArchive bytes (0: the default).
func apiServer(t *testing.T, maxArchive int64) *apitest.Server {
	t.Helper()
	if _, err := provision.CheckTerraform(context.Background(), ""); err != nil {
		t.Skipf("these tests run real terraform: %v", err)
	}
	return apitest.New(t, func(o *api.Options) {
		r, err := provision.New(provision.Options{WorkRoot: t.TempDir(), DevmeshBinary: tfprovidertest.Binary(t), MaxArchiveBytes: maxArchive})
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

func packDir(t *testing.T, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	for n, body := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, err := provision.Pack(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// rawTar builds a tar stream from headers as given, with no checks.
func rawTar(t *testing.T, entries ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h := h
		body := "resource \"terraform_data\" \"x\" {}\n"
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func wantCode(t *testing.T, err error, status int, code string) *client.Error {
	t.Helper()
	e, ok := err.(*client.Error)
	if !ok || e.Status != status || e.Code != code {
		t.Fatalf("err = %#v, want %d %s", err, status, code)
	}
	return e
}

func countRows(t *testing.T, srv *apitest.Server, table string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+srv.DBPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

const fastTemplate = `
terraform {
  required_providers {
    devmesh = {
      source = "registry.devmesh.local/devmesh/devmesh"
    }
  }
}

variable "size" {
  type        = number
  default     = 1
  description = "How big."
}

data "devmesh_workspace" "me" {}

resource "devmesh_agent" "main" {}

resource "terraform_data" "vm" {
  count = data.devmesh_workspace.me.start_count
  input = var.size
}
`

func TestTemplatePushAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := apiServer(t, 0)
	tok := srv.Bootstrap(t, "root", adminPW)
	admin := srv.Client(t, tok)
	member := srv.Client(t, srv.CreateUser(t, tok, "bob", memberPW, client.RoleMember))

	archive := packDir(t, map[string]string{"main.tf": fastTemplate})
	v1, err := admin.PushTemplate(ctx, "base", archive, "")
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != 1 || !v1.Active || v1.CreatedBy != "root" || v1.ArchiveSize != int64(len(archive)) || len(v1.Variables) != 1 {
		t.Fatalf("first version: %+v", v1)
	}
	if vr := v1.Variables[0]; vr.Name != "size" || vr.Type != "number" || string(vr.Default) != "1" || vr.Required || vr.Description != "How big." {
		t.Errorf("variable: %+v", vr)
	}
	v2, err := admin.PushTemplate(ctx, "base", packDir(t, map[string]string{"main.tf": fastTemplate, "README.md": "hi"}), "add a readme")
	if err != nil || v2.Version != 2 || v2.Message != "add a readme" {
		t.Fatalf("second version: %+v, %v", v2, err)
	}

	list, err := member.ListTemplates(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "base" || list[0].ActiveVersion != 2 || list[0].CreatedBy != "root" {
		t.Fatalf("list: %+v, %v", list, err)
	}
	vs, err := member.TemplateVersions(ctx, "base")
	if err != nil || len(vs) != 2 || vs[0].Active || !vs[1].Active {
		t.Fatalf("versions: %+v, %v", vs, err)
	}
	got, err := admin.TemplateArchive(ctx, "base", 1)
	if err != nil || !bytes.Equal(got, archive) {
		t.Fatalf("archive v1: %d bytes, %v", len(got), err)
	}
	if _, err := admin.TemplateArchive(ctx, "base", 0); err != nil {
		t.Fatalf("active archive: %v", err)
	}
	wantCode(t, mustErr(admin.TemplateArchive(ctx, "base", 7)), http.StatusNotFound, client.CodeNotFound)
	wantCode(t, mustErr(admin.TemplateVersions(ctx, "nope")), http.StatusNotFound, client.CodeNotFound)

	// Members push to nobody's template, and cannot create one.
	wantCode(t, mustErr(member.PushTemplate(ctx, "base", archive, "")), http.StatusForbidden, client.CodeForbidden)
	wantCode(t, mustErr(member.PushTemplate(ctx, "mine", archive, "")), http.StatusForbidden, client.CodeForbidden)
	wantCode(t, mustErr(member.TemplateArchive(ctx, "base", 1)), http.StatusForbidden, client.CodeForbidden)
	wantCode(t, mustErr(admin.PushTemplate(ctx, "Bad Name", archive, "")), http.StatusBadRequest, client.CodeBadRequest)
	if n := countRows(t, srv, "template_versions"); n != 2 {
		t.Errorf("template versions stored: %d, want 2", n)
	}

	// The archive must be sent as a tar.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/templates/base/versions", bytes.NewReader(archive))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("JSON content type: %v, %v", resp.Status, err)
	}
}

func mustErr[T any](_ T, err error) error { return err }

// TestTemplatePushRejects: unsafe, oversized or broken templates are
// refused with a 400 that says why, and nothing is stored.
func TestTemplatePushRejects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := apiServer(t, 32<<10)
	admin := srv.Client(t, srv.Bootstrap(t, "root", adminPW))
	big := strings.Repeat("# padding\n", 4<<10)
	tests := []struct {
		name    string
		archive []byte
		want    []string
	}{
		{"path traversal", rawTar(t, tar.Header{Name: "../evil.tf", Typeflag: tar.TypeReg, Mode: 0o644}), []string{"unsafe path", `".."`}},
		{"absolute path", rawTar(t, tar.Header{Name: "/etc/evil.tf", Typeflag: tar.TypeReg, Mode: 0o644}), []string{"absolute path"}},
		{"symlink out", rawTar(t, tar.Header{Name: "main.tf", Typeflag: tar.TypeReg, Mode: 0o644},
			tar.Header{Name: "passwd", Typeflag: tar.TypeSymlink, Linkname: "../../../etc/passwd"}), []string{"points outside"}},
		{"device", rawTar(t, tar.Header{Name: "main.tf", Typeflag: tar.TypeReg, Mode: 0o644},
			tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}), []string{"device files are not allowed"}},
		{"oversized", packDir(t, map[string]string{"main.tf": big}), []string{"too large", "32768"}},
		{"not a tar", []byte("this is not a tar stream, not at all, no sir, not in the slightest......................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................"), []string{"not a valid tar"}},
		{"syntax error", packDir(t, map[string]string{"main.tf": "resource \"terraform_data\" \"x\" {\n  input = \n}\n"}), []string{"terraform init failed", "main.tf"}},
		{"unknown argument", packDir(t, map[string]string{"main.tf": fastTemplate + "resource \"devmesh_agent\" \"x\" {\n  bogus = 1\n}\n"}), []string{"Unsupported argument", "main.tf line"}},
		{"backend", packDir(t, map[string]string{"main.tf": "terraform {\n  backend \"local\" {}\n}\n"}), []string{"backend"}},
		{"empty", packDir(t, map[string]string{"README.md": "no terraform here"}), []string{"no .tf"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := admin.PushTemplate(ctx, "base", tt.archive, "")
			e := wantCode(t, err, http.StatusBadRequest, client.CodeBadTemplate)
			for _, w := range tt.want {
				if !strings.Contains(e.Message, w) {
					t.Errorf("message lacks %q:\n%s", w, e.Message)
				}
			}
		})
	}
	if n := countRows(t, srv, "templates") + countRows(t, srv, "template_versions"); n != 0 {
		t.Errorf("rows stored after refused pushes: %d", n)
	}
}

// TestBuildsAPI drives a workspace's builds over the API: queue, follow
// the log, list, cancel refusals, other users, delete.
func TestBuildsAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := apiServer(t, 0)
	tok := srv.Bootstrap(t, "root", adminPW)
	admin := srv.Client(t, tok)
	bob := srv.Client(t, srv.CreateUser(t, tok, "bob", memberPW, client.RoleMember))
	if _, err := admin.PushTemplate(ctx, "base", packDir(t, map[string]string{"main.tf": fastTemplate}), ""); err != nil {
		t.Fatal(err)
	}
	root, _ := srv.Store.UserByName(ctx, "root")
	tpl, _ := srv.Store.TemplateByName(ctx, "base")
	ws, err := srv.Store.CreateWorkspace(ctx, store.Workspace{UUID: uuid.NewString(), OwnerID: root.ID, Name: "dev",
		TemplateID: tpl.ID, TemplateVersionID: tpl.ActiveVersionID, Variables: `{"size":"3"}`})
	if err != nil {
		t.Fatal(err)
	}

	b, err := admin.CreateBuild(ctx, "dev", client.TransitionStart)
	if err != nil || b.Number != 1 || b.Transition != "start" || b.Initiator != "root" || b.Workspace != "dev" {
		t.Fatalf("create build: %+v, %v", b, err)
	}
	var lines []client.BuildLog
	done, err := admin.FollowBuild(ctx, "dev", 0, 0, func(l client.BuildLog) { lines = append(lines, l) })
	if err != nil || done.Status != client.BuildSucceeded || done.Number != 1 || done.FinishedAt.IsZero() {
		t.Fatalf("follow: %+v, %v", done, err)
	}
	var text strings.Builder
	for i, l := range lines {
		if i > 0 && l.ID <= lines[i-1].ID {
			t.Errorf("log line IDs not increasing: %d after %d", l.ID, lines[i-1].ID)
		}
		text.WriteString(l.Output + "\n")
	}
	for _, w := range []string{"Apply complete!", "build succeeded"} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("followed log lacks %q:\n%s", w, text.String())
		}
	}
	if agents, _ := srv.Store.ListAgents(ctx, ws.ID); len(agents) != 1 {
		t.Errorf("agents after start: %d", len(agents))
	}
	page, err := admin.BuildLogs(ctx, "dev", 1, lines[0].ID, false)
	if err != nil || len(page.Logs) != len(lines)-1 || page.Build.Status != client.BuildSucceeded {
		t.Errorf("logs after the first line: %d lines (want %d), %v", len(page.Logs), len(lines)-1, err)
	}
	wantCode(t, mustErr(admin.CancelBuild(ctx, "dev", 1)), http.StatusConflict, client.CodeBuildFinished)
	wantCode(t, mustErr(admin.CreateBuild(ctx, "dev", "restart")), http.StatusBadRequest, client.CodeBadRequest)
	wantCode(t, mustErr(admin.Build(ctx, "dev", 9)), http.StatusNotFound, client.CodeNotFound)

	// Another user sees none of it.
	wantCode(t, mustErr(bob.ListBuilds(ctx, "dev")), http.StatusNotFound, client.CodeNotFound)
	wantCode(t, mustErr(bob.CreateBuild(ctx, "dev", client.TransitionStop)), http.StatusNotFound, client.CodeNotFound)
	wantCode(t, mustErr(bob.BuildLogs(ctx, "dev", 1, 0, false)), http.StatusNotFound, client.CodeNotFound)

	// An external workspace has nothing to build.
	if _, err := srv.Store.CreateWorkspace(ctx, store.Workspace{UUID: uuid.NewString(), OwnerID: root.ID, Name: "ext"}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, mustErr(admin.CreateBuild(ctx, "ext", client.TransitionStart)), http.StatusBadRequest, client.CodeBadRequest)

	// Stop, then delete: following the delete ends when the workspace goes.
	if _, err := admin.CreateBuild(ctx, "dev", client.TransitionStop); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateBuild(ctx, "dev", client.TransitionDelete); err != nil {
		t.Fatal(err)
	}
	wantCode(t, mustErr(admin.CreateBuild(ctx, "dev", client.TransitionStart)), http.StatusConflict, client.CodeConflict)
	list, err := admin.ListBuilds(ctx, "dev")
	if err != nil || len(list) != 3 || list[1].Transition != "stop" || list[2].Transition != "delete" {
		t.Fatalf("list: %+v, %v", list, err)
	}
	stop, err := admin.FollowBuild(ctx, "dev", 2, 0, func(client.BuildLog) {})
	if err != nil || stop.Status != client.BuildSucceeded {
		t.Fatalf("stop: %+v, %v", stop, err)
	}
	del, err := admin.FollowBuild(ctx, "dev", 3, 0, func(client.BuildLog) {})
	if err != nil || del.Status != client.BuildSucceeded || del.Transition != "delete" {
		t.Fatalf("delete: %+v, %v", del, err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := srv.Store.WorkspaceByID(ctx, ws.ID); err == store.ErrNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("workspace not deleted")
		}
	}
}
