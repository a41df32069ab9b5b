package client

import (
	"context"
	"net/http"
)

// MaxListeningPorts bounds the ports one report may hold.
const MaxListeningPorts = 256

// ListeningPort is a TCP port a process in the workspace listens on, as
// the agent saw it.
type ListeningPort struct {
	Port int `json:"port"`
	// Address is the local address listened on: "0.0.0.0", "::",
	// "127.0.0.1"... (the agent's port forwarding dials the loopback, so
	// all of them can be forwarded).
	Address string `json:"address"`
	// Process is the listening process's name (comm), when the agent can
	// read it.
	Process string `json:"process,omitempty"`
}

// AgentPorts is what an agent reports about listening ports (POST
// /agent/ports): the ports, sorted, or, where the agent cannot find them
// (not Linux), why not.
type AgentPorts struct {
	Ports       []ListeningPort `json:"ports"`
	Unsupported string          `json:"unsupported,omitempty"`
}

// PostAgentPorts reports the ports listening in the workspace; each
// report replaces the previous one.
func (c *Client) PostAgentPorts(ctx context.Context, p AgentPorts) error {
	return c.do(ctx, http.MethodPost, "agent/ports", p, nil)
}
