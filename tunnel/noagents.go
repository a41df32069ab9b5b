package tunnel

import (
	"fmt"

	"github.com/devmesh/devmesh/coordinator/client"
)

// noAgentsError says why a workspace has no agent to connect to, and
// what to do.
type noAgentsError struct{ msg string }

func (e *noAgentsError) Error() string { return e.msg }

// NoAgents explains why ws has no agent to connect to, from its latest
// build: it is stopped (or stopping, or being deleted), a build is still
// running or has failed, or it is started from a template that declares
// no agent at all.
func NoAgents(ws client.Workspace) error {
	b := ws.LatestBuild
	name := ws.Name
	var msg string
	switch {
	case b == nil:
		msg = fmt.Sprintf("workspace %s has no agents: its agent has never been created", name)
	case !b.Finished():
		msg = fmt.Sprintf("workspace %s has no agents yet: build #%d (%s) is %s; follow it with devmesh logs %s --build %d -f",
			name, b.Number, b.Transition, b.Status, name, b.Number)
	case b.Status != client.BuildSucceeded:
		msg = fmt.Sprintf("workspace %s has no agents: its latest build, #%d (%s), %s; see devmesh logs %s --build %d, then devmesh start %s",
			name, b.Number, b.Transition, b.Status, name, b.Number, name)
	case b.Transition == client.TransitionStart:
		msg = fmt.Sprintf("workspace %s is started, but its template (%s) declares no agent (devmesh_agent): there is nothing to connect to",
			name, ws.Template)
	default: // a stop (or delete) build succeeded
		msg = fmt.Sprintf("workspace %s is stopped: start it with devmesh start %s", name, name)
	}
	return &noAgentsError{msg}
}
