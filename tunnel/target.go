// Package tunnel is devmesh's client-side connectivity over a tailnet
// node: finding a workspace agent, an SSH client that verifies the host
// key the coordinator published, a stdio proxy for OpenSSH's
// ProxyCommand, TCP and UDP port forwarding, ping with path hints, a
// speedtest client, and the managed OpenSSH configuration.
package tunnel

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/devmesh/devmesh/coordinator/client"
)

// AliasPrefix starts the OpenSSH host names config-ssh manages:
// devmesh.WS and devmesh.WS.AGENT.
const AliasPrefix = "devmesh."

var (
	// ErrNotFound: the workspace does not exist or belongs to someone
	// else (the API does not tell the two apart).
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: the agent exists but cannot be reached now.
	ErrUnavailable = errors.New("agent unavailable")
	// ErrRefused: the coordinator's policy does not let the caller reach
	// the workspace (an admin's OWNER/WS without --admins-reach-all).
	ErrRefused = errors.New("not allowed")
)

// notFoundError is an ErrNotFound with its own message.
type notFoundError string

func (e notFoundError) Error() string        { return string(e) }
func (e notFoundError) Is(target error) bool { return target == ErrNotFound }

// Target names an agent: a workspace, and one of its agents when it has
// several. Agent is empty when the user did not name one. Workspace is
// "WS", or "OWNER/WS" for an admin naming another user's workspace.
type Target struct {
	Workspace string
	Agent     string
}

// ParseTarget parses "WS", "WS.AGENT", "OWNER/WS" or "OWNER/WS.AGENT".
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("invalid workspace %q: want WS, WS.AGENT, or (admins) OWNER/WS[.AGENT]", s)
	owner, rest, qualified := strings.Cut(s, "/")
	if !qualified {
		owner, rest = "", s
	}
	ws, agent, dotted := strings.Cut(rest, ".")
	switch {
	case ws == "" || (qualified && owner == ""):
		return Target{}, bad
	case dotted && (agent == "" || strings.Contains(agent, ".")):
		return Target{}, bad
	case strings.ContainsAny(rest, " \t/\\@:") || strings.ContainsAny(owner, " \t.\\@:"):
		return Target{}, bad
	}
	if qualified {
		ws = owner + "/" + ws
	}
	return Target{Workspace: ws, Agent: agent}, nil
}

// ParseAlias parses an OpenSSH host name as config-ssh writes them
// (devmesh.WS or devmesh.WS.AGENT), or a plain target.
func ParseAlias(s string) (Target, error) {
	if rest, ok := strings.CutPrefix(strings.ToLower(s), AliasPrefix); ok && rest != "" {
		s = s[len(AliasPrefix):]
	}
	return ParseTarget(s)
}

// String returns "WS" or "WS.AGENT".
func (t Target) String() string {
	if t.Agent == "" {
		return t.Workspace
	}
	return t.Workspace + "." + t.Agent
}

// Alias returns the OpenSSH host name for t: "devmesh." + t, lower case
// as OpenSSH looks host names up.
func (t Target) Alias() string { return strings.ToLower(AliasPrefix + t.String()) }

// Endpoint is a resolved agent: where its SSH server listens and the host
// key the coordinator published for it.
type Endpoint struct {
	Target Target // Agent always set
	Addr   netip.Addr
	// HostKey is nil when the agent has not published one yet.
	HostKey ssh.PublicKey
	Agent   client.Agent
}

// UnavailableError says why an agent cannot be reached. It wraps
// ErrUnavailable.
type UnavailableError struct {
	Target   Target // Agent set
	Status   string // client.AgentConnecting, client.AgentDisconnected, or "no_host_key"
	LastSeen time.Time
	// Now is when the status was read (for "last seen 3m ago").
	Now time.Time
}

// statusNoHostKey is UnavailableError.Status for a connected agent that
// has not published its SSH host key.
const statusNoHostKey = "no_host_key"

func (e *UnavailableError) Error() string {
	who := fmt.Sprintf("agent %s of %s", e.Target.Agent, e.Target.Workspace)
	switch e.Status {
	case client.AgentDisconnected:
		if e.LastSeen.IsZero() {
			return who + " is disconnected"
		}
		return fmt.Sprintf("%s is disconnected, last seen %s", who, Ago(e.Now, e.LastSeen))
	case statusNoHostKey:
		return who + " has not published its SSH host key yet"
	default:
		return who + " has not connected yet"
	}
}

func (e *UnavailableError) Unwrap() error { return ErrUnavailable }

// Ago renders how long before now t was, coarsely: "45s ago", "3m ago",
// "5h ago", "4d ago".
func Ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

// endpointFor picks t's agent out of ws and checks it can be reached now;
// requireHostKey also needs its published SSH host key.
func endpointFor(ws client.Workspace, t Target, now time.Time, requireHostKey bool) (Endpoint, error) {
	a, err := pickAgent(ws, t)
	if err != nil {
		return Endpoint{}, err
	}
	t.Agent = a.Name
	ep := Endpoint{Target: t, Agent: a}
	if a.Status != client.AgentConnected || len(a.Addresses) == 0 {
		status := a.Status
		if status != client.AgentDisconnected {
			status = client.AgentConnecting
		}
		return ep, &UnavailableError{Target: t, Status: status, LastSeen: a.LastSeen, Now: now}
	}
	ep.Addr, err = firstAddr(a.Addresses)
	if err != nil {
		return ep, fmt.Errorf("agent %s of %s: %w", a.Name, ws.Name, err)
	}
	if a.SSHHostKey != "" {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(a.SSHHostKey))
		if err != nil {
			return ep, fmt.Errorf("agent %s of %s published an unreadable SSH host key: %w", a.Name, ws.Name, err)
		}
		ep.HostKey = key
	} else if requireHostKey {
		return ep, &UnavailableError{Target: t, Status: statusNoHostKey, Now: now}
	}
	return ep, nil
}

// pickAgent returns the agent t names, or the workspace's only agent.
func pickAgent(ws client.Workspace, t Target) (client.Agent, error) {
	names := make([]string, 0, len(ws.Agents))
	for _, a := range ws.Agents {
		if t.Agent != "" && a.Name == t.Agent {
			return a, nil
		}
		names = append(names, a.Name)
	}
	switch {
	case t.Agent != "":
		return client.Agent{}, notFoundError(fmt.Sprintf("workspace %s has no agent %s (its agents: %s)",
			ws.Name, t.Agent, strings.Join(names, ", ")))
	case len(ws.Agents) == 1:
		return ws.Agents[0], nil
	case len(ws.Agents) == 0:
		return client.Agent{}, NoAgents(ws)
	}
	return client.Agent{}, fmt.Errorf("workspace %s has several agents (%s): name one as %s.AGENT",
		ws.Name, strings.Join(names, ", "), ws.Name)
}

// firstAddr returns the first IPv4 tailnet address, else the first one.
func firstAddr(addrs []string) (netip.Addr, error) {
	var first netip.Addr
	for _, s := range addrs {
		p, err := netip.ParsePrefix(s)
		a := p.Addr()
		if err != nil {
			if a, err = netip.ParseAddr(s); err != nil {
				continue
			}
		}
		if a.Is4() {
			return a, nil
		}
		if !first.IsValid() {
			first = a
		}
	}
	if !first.IsValid() {
		return netip.Addr{}, fmt.Errorf("no usable tailnet address in %q", addrs)
	}
	return first, nil
}
