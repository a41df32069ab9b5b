package api

import (
	"cmp"
	"strings"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/control"
	"github.com/devmesh/devmesh/coordinator/store"
)

// agentNodes returns the owner's agent nodes in the live tailnet, by
// agent ID.
func (a *API) agentNodes(ownerID int64) map[int64][]*control.Node {
	out := map[int64][]*control.Node{}
	for _, n := range a.control.Registry().Nodes(ownerID) {
		if n.IsAgent() {
			out[n.AgentID] = append(out[n.AgentID], n)
		}
	}
	return out
}

// workspaceJSON renders a workspace and its agents; nodes are the owner's
// agent nodes (agentNodes).
func (a *API) workspaceJSON(ws store.Workspace, owner string, agents []store.Agent, nodes map[int64][]*control.Node) client.Workspace {
	out := client.Workspace{
		ID:        ws.ID,
		UUID:      ws.UUID,
		Name:      ws.Name,
		Owner:     owner,
		CreatedAt: ws.CreatedAt,
		Agents:    make([]client.Agent, 0, len(agents)),
	}
	// The template, latest build and metadata of a template's workspace
	// are filled in by workspaceViews.
	for _, ag := range agents {
		out.Agents = append(out.Agents, agentJSON(ag, nodes[ag.ID]))
	}
	return out
}

// agentJSON renders an agent with the connection state of its nodes.
func agentJSON(ag store.Agent, nodes []*control.Node) client.Agent {
	out := client.Agent{
		ID:               ag.ID,
		UUID:             ag.UUID,
		Name:             ag.Name,
		Lifecycle:        ag.Lifecycle,
		Addresses:        []string{},
		Version:          ag.Version,
		OS:               ag.OS,
		Arch:             ag.Arch,
		Dir:              ag.Dir,
		HasStartupScript: strings.TrimSpace(ag.StartupScript) != "",
		SSHHostKey:       ag.SSHHostKey,
		Connections:      ag.Connections,
		RxBytes:          ag.RxBytes,
		TxBytes:          ag.TxBytes,
	}
	n := pickAgentNode(nodes)
	out.Status, out.LastSeen = agentStatus(ag, n)
	if n != nil {
		for _, p := range n.Addresses {
			out.Addresses = append(out.Addresses, p.Addr().String())
		}
	}
	return out
}

// pickAgentNode chooses the node that represents an agent: normally it
// has one, but an agent that lost its state directory registers anew.
// An online node wins, then the one seen (or else created) last.
func pickAgentNode(nodes []*control.Node) *control.Node {
	var best *control.Node
	for _, n := range nodes {
		if best == nil || nodeRank(n, best) > 0 {
			best = n
		}
	}
	return best
}

func nodeRank(x, y *control.Node) int {
	if x.Online != y.Online {
		if x.Online {
			return 1
		}
		return -1
	}
	if c := x.LastSeen.Compare(y.LastSeen); c != 0 {
		return c
	}
	return cmp.Or(x.Created.Compare(y.Created), cmp.Compare(x.ID, y.ID))
}

// agentStatus derives an agent's connection state from its node (nil if
// it has none) and what the agent reported: connected while its node has
// a map stream open, connecting until it was ever seen, else
// disconnected. lastSeen is the latest sign of life from either.
func agentStatus(ag store.Agent, n *control.Node) (status string, lastSeen time.Time) {
	lastSeen = ag.LastSeenAt
	if n != nil && n.LastSeen.After(lastSeen) {
		lastSeen = n.LastSeen
	}
	switch {
	case n != nil && n.Online:
		return client.AgentConnected, lastSeen
	case lastSeen.IsZero() && ag.FirstConnectedAt.IsZero():
		return client.AgentConnecting, lastSeen
	}
	return client.AgentDisconnected, lastSeen
}
