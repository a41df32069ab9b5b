package agent

import (
	"context"
	"slices"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
)

// portsInterval is how often the agent looks for listening ports; a
// report goes out only when they changed (and at least every
// portsRefresh, so a coordinator that lost one catches up).
const (
	portsInterval = 3 * time.Second
	portsRefresh  = time.Minute
)

// portScope says whose listening sockets are the workspace's.
type portScope struct {
	// all: every listener but the agent's own (an external workspace:
	// the machine is the workspace).
	all bool
	// marker: environment entries that every process the agent started
	// (SSH sessions, the startup script and their children) carries;
	// a process holding all of them is the workspace's.
	marker []string
}

// scopeOf is the port scope of the workspace the manifest describes.
func scopeOf(m client.AgentManifest) portScope {
	return portScope{all: m.External, marker: []string{
		"DEVMESH_WORKSPACE=" + m.WorkspaceName,
		"DEVMESH_WORKSPACE_OWNER=" + m.Owner,
	}}
}

// reportPorts reports the workspace's listening ports every portsInterval
// while they change, until ctx ends. Where they cannot be found (not
// Linux) it reports why, once.
func (a *Agent) reportPorts(ctx context.Context, scope portScope) {
	t := time.NewTicker(portsInterval)
	defer t.Stop()
	var last *client.AgentPorts
	var sent time.Time
	for {
		ports, err := listeningPorts(scope)
		cur := client.AgentPorts{Ports: ports}
		if err != nil {
			cur = client.AgentPorts{Ports: []client.ListeningPort{}, Unsupported: err.Error()}
		}
		if last == nil || !samePorts(*last, cur) || time.Since(sent) >= portsRefresh {
			if err := a.api.PostAgentPorts(ctx, cur); err != nil {
				if ctx.Err() == nil {
					a.checkRejected(err)
					a.log.Debug("report listening ports", "err", err)
				}
			} else {
				last, sent = &cur, time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func samePorts(a, b client.AgentPorts) bool {
	return a.Unsupported == b.Unsupported && slices.Equal(a.Ports, b.Ports)
}
