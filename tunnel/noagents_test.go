package tunnel

import (
	"strings"
	"testing"

	"github.com/devmesh/devmesh/coordinator/client"
)

func TestNoAgents(t *testing.T) {
	build := func(tr, status string) *client.Build {
		return &client.Build{Number: 3, Transition: tr, Status: status}
	}
	for _, tc := range []struct {
		b    *client.Build
		want string
	}{
		{build(client.TransitionStop, client.BuildSucceeded), "workspace dev is stopped: start it with devmesh start dev"},
		{build(client.TransitionStart, client.BuildSucceeded), "workspace dev is started, but its template (t) declares no agent"},
		{build(client.TransitionStart, client.BuildRunning), "build #3 (start) is running; follow it with devmesh logs dev --build 3 -f"},
		{build(client.TransitionStart, client.BuildFailed), "its latest build, #3 (start), failed; see devmesh logs dev --build 3"},
		{nil, "its agent has never been created"},
	} {
		err := NoAgents(client.Workspace{Name: "dev", Template: "t", LatestBuild: tc.b})
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %q, want %q", tc.b, err, tc.want)
		}
	}
}
