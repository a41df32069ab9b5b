package sshd

import "errors"

// errNoAgentForwarding is what a client asking for -A is told on Windows.
var errNoAgentForwarding = errors.New("agent forwarding (-A) is not supported on Windows workspaces")

// agentListener would be a session's SSH_AUTH_SOCK; see agent.go.
type agentListener struct{ path string }

func (c *conn) listenAgent() (*agentListener, error) { return nil, errNoAgentForwarding }

func (a *agentListener) close() {}
