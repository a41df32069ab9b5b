package web

import (
	"testing"

	"github.com/devmesh/devmesh/coordinator/client"
)

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "/",
		"/tokens":               "/tokens",
		"/@alice/dev?x=1":       "/@alice/dev?x=1",
		"//evil.example/":       "/",
		"/\\evil.example":       "/",
		"https://evil.example/": "/",
		"javascript:alert(1)":   "/",
		"tokens":                "/",
		"/%2F%2Fevil.example":   "/%2F%2Fevil.example", // a path on this site
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWorkspaceState(t *testing.T) {
	b := func(tr, st string) client.Workspace {
		return client.Workspace{LatestBuild: &client.Build{Transition: tr, Status: st}}
	}
	for _, tc := range []struct {
		ws   client.Workspace
		want string
	}{
		{client.Workspace{}, "external"},
		{b("start", "pending"), "starting"},
		{b("start", "running"), "starting"},
		{b("start", "succeeded"), "running"},
		{b("stop", "succeeded"), "stopped"},
		{b("stop", "running"), "stopping"},
		{b("delete", "pending"), "deleting"},
		{b("start", "failed"), "start failed"},
		{b("stop", "canceled"), "stop canceled"},
	} {
		if got := workspaceState(tc.ws); got != tc.want {
			t.Errorf("%+v: %q, want %q", *tc.ws.LatestBuild, got, tc.want)
		}
	}
}

func TestPaths(t *testing.T) {
	for p, want := range map[string]bool{
		"/": true, "/login": true, "/@a/b": true, "/static/app.css": true, "/admin/users": true,
		"/api/v1/users": false, "/login/node/x": false, "/healthz": false, "/derp": false, "/ts2021": false, "/bin/x": false,
	} {
		if got := IsPagePath(p); got != want {
			t.Errorf("IsPagePath(%q) = %v, want %v", p, got, want)
		}
	}
	if o, w, ok := workspacePath("/@alice/dev/"); !ok || o != "alice" || w != "dev" {
		t.Errorf("workspacePath: %q %q %v", o, w, ok)
	}
	for _, p := range []string{"/alice/dev", "/@alice", "/@/dev", "/@alice/dev/x"} {
		if _, _, ok := workspacePath(p); ok {
			t.Errorf("workspacePath(%q) matched", p)
		}
	}
}
