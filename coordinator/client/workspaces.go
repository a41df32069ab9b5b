package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Agent connection states, derived from the agent's tailnet node.
const (
	AgentConnecting   = "connecting"   // never connected yet
	AgentConnected    = "connected"    // its node has an open map stream
	AgentDisconnected = "disconnected" // was connected; see LastSeen
)

// Workspace is a workspace as the API shows it to its owner.
type Workspace struct {
	ID    int64  `json:"id"`
	UUID  string `json:"uuid"`
	Name  string `json:"name"`
	Owner string `json:"owner"`
	// Template and TemplateVersion are the template and version the
	// workspace is built from; empty for an external workspace.
	Template        string `json:"template,omitempty"`
	TemplateVersion int    `json:"template_version,omitempty"`
	// Outdated is set when the template's active version is not the
	// workspace's: `devmesh update` rebuilds it on the active one.
	Outdated bool `json:"outdated,omitempty"`
	// ActiveVersion is the template's active version.
	ActiveVersion int `json:"active_version,omitempty"`
	// Parameters are the template parameter values of the latest build.
	Parameters map[string]string `json:"parameters,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	// LatestBuild is the workspace's latest build: whether it is started,
	// stopped, being built or failed. Nil for an external workspace.
	LatestBuild *Build `json:"latest_build,omitempty"`
	// Metadata are the devmesh_metadata items of the workspace's latest
	// successful build, in the template's order.
	Metadata []MetadataItem `json:"metadata,omitempty"`
	Agents   []Agent        `json:"agents"`
	// Schedule is the workspace's autostart and autostop (nil for an
	// external workspace).
	Schedule *WorkspaceSchedule `json:"schedule,omitempty"`
	// Unreachable, when set, says why the caller (an admin looking at
	// another user's workspace) cannot connect to its agents.
	Unreachable string `json:"unreachable,omitempty"`
}

// MetadataItem is one item of a template's devmesh_metadata resource.
// The value of a sensitive item is shown to admins only: for others
// Value is empty and Hidden is set.
type MetadataItem struct {
	Resource  string `json:"resource,omitempty"` // the resource it describes
	Key       string `json:"key"`
	Value     string `json:"value"`
	Sensitive bool   `json:"sensitive,omitempty"`
	Hidden    bool   `json:"hidden,omitempty"`
}

// Agent is a workspace agent: how to reach it and how it is doing.
type Agent struct {
	ID int64 `json:"id"`
	// UUID changes with each agent a build creates (a start after a
	// stop, a rebuild), unlike the workspace's.
	UUID      string `json:"uuid,omitempty"`
	Name      string `json:"name"`
	Status    string `json:"status"`    // AgentConnecting, AgentConnected, AgentDisconnected
	Lifecycle string `json:"lifecycle"` // created, starting, ready, start_error, shutting_down, off
	// Addresses are the agent node's tailnet addresses (empty until it
	// first joined).
	Addresses []string  `json:"addresses"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	Version   string    `json:"version,omitempty"`
	OS        string    `json:"os,omitempty"`
	Arch      string    `json:"arch,omitempty"`
	Dir       string    `json:"dir,omitempty"`
	// ListeningPorts are the TCP ports listening in the workspace, as the
	// connected agent last reported them; PortsUnsupported says why there
	// are none to report (the agent's OS).
	ListeningPorts   []ListeningPort `json:"listening_ports,omitempty"`
	PortsUnsupported string          `json:"ports_unsupported,omitempty"`
	// HasStartupScript says whether the agent runs a startup script (the
	// only source of its log).
	HasStartupScript bool `json:"has_startup_script,omitempty"`
	// SSHHostKey is the agent's SSH host public key in authorized_keys
	// format, published by the agent; clients verify against it.
	SSHHostKey  string `json:"ssh_host_key,omitempty"`
	Connections int64  `json:"connections"`
	RxBytes     int64  `json:"rx_bytes"`
	TxBytes     int64  `json:"tx_bytes"`
}

// CreateWorkspaceRequest creates a workspace: External for a
// bring-your-own-machine workspace with one agent, else from Template.
type CreateWorkspaceRequest struct {
	Name      string            `json:"name"`
	External  bool              `json:"external,omitempty"`
	Template  string            `json:"template,omitempty"`
	Variables map[string]string `json:"variables,omitempty"`
	// Parameters are values for the template's parameters (devmesh_parameter),
	// taken literally; see provision/param for their form.
	Parameters map[string]string `json:"parameters,omitempty"`
	// Autostart is a cron spec for the new workspace (see
	// WorkspaceSchedule); TTLMs its TTL, nil for the template's default.
	Autostart string `json:"autostart,omitempty"`
	TTLMs     *int64 `json:"ttl_ms,omitempty"`
}

// UpdateWorkspaceRequest rebuilds a workspace on its template's active
// version; Parameters change mutable parameters (the others keep their
// values).
type UpdateWorkspaceRequest struct {
	Parameters map[string]string `json:"parameters,omitempty"`
}

// CreatedWorkspace is the new workspace. AgentToken is set, once, for an
// external workspace: the secret its agent runs with. Build is set for a
// workspace from a template: its first build (a start), just queued.
type CreatedWorkspace struct {
	Workspace  Workspace `json:"workspace"`
	AgentToken string    `json:"agent_token,omitempty"`
	Build      *Build    `json:"build,omitempty"`
}

// AgentLog is one line of an agent's output (its startup script).
type AgentLog struct {
	ID        int64     `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	Stream    string    `json:"stream"`
	Output    string    `json:"output"`
}

// CreateWorkspace creates a workspace (POST /workspaces).
func (c *Client) CreateWorkspace(ctx context.Context, req CreateWorkspaceRequest) (CreatedWorkspace, error) {
	var out CreatedWorkspace
	return out, c.do(ctx, http.MethodPost, "workspaces", req, &out)
}

// ListWorkspaces lists the caller's workspaces (GET /workspaces).
func (c *Client) ListWorkspaces(ctx context.Context) ([]Workspace, error) {
	var out []Workspace
	return out, c.do(ctx, http.MethodGet, "workspaces", nil, &out)
}

// ListAllWorkspaces lists every user's workspaces; admins only
// (GET /workspaces?all=true).
func (c *Client) ListAllWorkspaces(ctx context.Context) ([]Workspace, error) {
	var out []Workspace
	return out, c.do(ctx, http.MethodGet, "workspaces?all=true", nil, &out)
}

// Workspace returns the caller's workspace called name, with its agents
// (GET /workspaces/{name}). Admins name another user's workspace as
// OWNER/WS; for members a workspace of another user is not found.
func (c *Client) Workspace(ctx context.Context, name string) (Workspace, error) {
	var out Workspace
	return out, c.do(ctx, http.MethodGet, "workspaces/"+url.PathEscape(name), nil, &out)
}

// DeleteWorkspace deletes the caller's workspace called name
// (DELETE /workspaces/{name}). An external workspace is deleted at once
// (204) and the build is nil. A workspace from a template is deleted by a
// delete build (terraform destroy), which this queues (202) and returns:
// the workspace goes when that build succeeds (follow it with
// FollowBuild).
func (c *Client) DeleteWorkspace(ctx context.Context, name string) (*Build, error) {
	var out *Build
	return out, c.do(ctx, http.MethodDelete, "workspaces/"+url.PathEscape(name), nil, &out)
}

// AgentLogs returns an agent's log lines with ID > after
// (GET /workspaces/{name}/agents/{agent}/logs?after=N).
func (c *Client) AgentLogs(ctx context.Context, workspace, agent string, after int64) ([]AgentLog, error) {
	var out []AgentLog
	path := fmt.Sprintf("workspaces/%s/agents/%s/logs?after=%d", url.PathEscape(workspace), url.PathEscape(agent), after)
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// UpdateWorkspace queues a start build of the workspace on its template's
// active version, carrying its parameter values with the changes in req
// (POST /workspaces/{name}/update).
func (c *Client) UpdateWorkspace(ctx context.Context, name string, req UpdateWorkspaceRequest) (Build, error) {
	var out Build
	return out, c.do(ctx, http.MethodPost, "workspaces/"+url.PathEscape(name)+"/update", req, &out)
}
