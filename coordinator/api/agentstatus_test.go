package api

import (
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/control"
	"github.com/devmesh/devmesh/coordinator/store"
)

func TestAgentStatus(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	t1 := t0.Add(time.Minute)
	online := &control.Node{ID: 1, Online: true, LastSeen: t0}
	gone := &control.Node{ID: 2, LastSeen: t1}
	fresh := &control.Node{ID: 3} // registered, never streamed
	for _, tc := range []struct {
		name     string
		agent    store.Agent
		node     *control.Node
		status   string
		lastSeen time.Time
	}{
		{"never", store.Agent{}, nil, client.AgentConnecting, time.Time{}},
		{"registered only", store.Agent{}, fresh, client.AgentConnecting, time.Time{}},
		{"online", store.Agent{LastSeenAt: t1}, online, client.AgentConnected, t1},
		{"node offline", store.Agent{LastSeenAt: t0}, gone, client.AgentDisconnected, t1},
		{"reported, no node", store.Agent{FirstConnectedAt: t0, LastSeenAt: t0}, nil, client.AgentDisconnected, t0},
	} {
		status, ls := agentStatus(tc.agent, tc.node)
		if status != tc.status || !ls.Equal(tc.lastSeen) {
			t.Errorf("%s: %s %v, want %s %v", tc.name, status, ls, tc.status, tc.lastSeen)
		}
	}
}

func TestPickAgentNode(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	old := &control.Node{ID: 1, LastSeen: t0, Created: t0}
	newer := &control.Node{ID: 2, LastSeen: t0.Add(time.Hour), Created: t0}
	on := &control.Node{ID: 3, Online: true, Created: t0}
	for _, tc := range []struct {
		nodes []*control.Node
		want  *control.Node
	}{
		{nil, nil},
		{[]*control.Node{old}, old},
		{[]*control.Node{old, newer}, newer},
		{[]*control.Node{newer, old}, newer},
		{[]*control.Node{old, on, newer}, on},
	} {
		if got := pickAgentNode(tc.nodes); got != tc.want {
			t.Errorf("pickAgentNode(%v) = %v, want %v", tc.nodes, got, tc.want)
		}
	}
}
