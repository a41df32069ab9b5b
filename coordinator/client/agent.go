package client

import (
	"context"
	"net/http"
	"time"
)

// The agent API (/api/v1/agent/...) is called by a workspace agent with
// its agent token ("dma_..."), never with a user's token; user tokens are
// refused there and agent tokens everywhere else.

// Error codes of the workspace and agent API.
const (
	// CodeNotImplemented answers a request for a feature this
	// coordinator does not have yet.
	CodeNotImplemented = "not_implemented"
	// CodeLogsFull: the agent stored MaxAgentLogsStored lines already.
	CodeLogsFull = "logs_full"
)

// Agent lifecycle states, as reported by the agent (Agent.Lifecycle).
const (
	LifecycleCreated      = "created" // never reported
	LifecycleStarting     = "starting"
	LifecycleReady        = "ready"
	LifecycleStartError   = "start_error"
	LifecycleShuttingDown = "shutting_down"
	LifecycleOff          = "off"
)

// Log streams of AgentLogLine.Stream.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// Limits of POST /agent/logs. The request body is also bounded (64 KiB).
const (
	MaxAgentLogLines     = 1000   // lines per request
	MaxAgentLogLineBytes = 4096   // bytes of one line's Output
	MaxAgentLogsStored   = 50_000 // lines kept per agent; more are refused
)

// AgentManifest is what an agent needs to know to run.
type AgentManifest struct {
	WorkspaceID   int64  `json:"workspace_id"`
	WorkspaceUUID string `json:"workspace_uuid"`
	WorkspaceName string `json:"workspace_name"`
	// Owner is the workspace owner's username: only that user's devices
	// may open SSH sessions on the agent.
	Owner     string `json:"owner"`
	AgentID   int64  `json:"agent_id"`
	AgentUUID string `json:"agent_uuid"`
	AgentName string `json:"agent_name"`
	// Env is added to the startup script's and every SSH session's
	// environment.
	Env           map[string]string `json:"env"`
	StartupScript string            `json:"startup_script"`
	// Dir is the sessions' working directory ("" for the home directory).
	Dir string `json:"dir"`
	// CoordinatorURL is the coordinator's access URL.
	CoordinatorURL string `json:"coordinator_url"`
	// External is set for a bring-your-own-machine workspace: the whole
	// machine is the workspace (the agent reports every listening port,
	// not only those of processes it started).
	External bool `json:"external,omitempty"`
}

// AgentAuthKey is a single-use tailnet auth key for the agent's node,
// shown once.
type AgentAuthKey struct {
	Key       string    `json:"key"`
	ExpiresAt time.Time `json:"expires_at"`
}

// AgentInfo is what an agent reports about itself after joining.
type AgentInfo struct {
	Version string `json:"version"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
	// SSHHostKey is the agent's SSH host public key in authorized_keys
	// format ("ssh-ed25519 AAAA...").
	SSHHostKey string `json:"ssh_host_key"`
}

// AgentLifecycleRequest reports a lifecycle state (Lifecycle*).
type AgentLifecycleRequest struct {
	State string `json:"state"`
}

// AgentLogLine is one line of agent output, without its newline.
type AgentLogLine struct {
	Stream    string    `json:"stream"` // StreamStdout or StreamStderr
	Output    string    `json:"output"`
	CreatedAt time.Time `json:"created_at,omitzero"` // zero: when received
}

// AgentLogsRequest appends log lines, in order.
type AgentLogsRequest struct {
	Lines []AgentLogLine `json:"lines"`
}

// AgentStats are an agent's SSH counters since it started.
type AgentStats struct {
	Connections int64 `json:"connections"` // open SSH connections
	// Sessions are the open SSH sessions (shells, commands, sftp);
	// PortForwards the connections forwarded straight over the tailnet
	// to the workspace's ports (port-forward, the daemon); forwards inside
	// an SSH connection count in Connections. Any open connection keeps
	// the workspace's autostop away.
	Sessions     int64 `json:"sessions,omitempty"`
	PortForwards int64 `json:"port_forwards,omitempty"`
	RxBytes      int64 `json:"rx_bytes"`
	TxBytes      int64 `json:"tx_bytes"`
}

// AgentManifest returns the calling agent's manifest (GET /agent/manifest).
func (c *Client) AgentManifest(ctx context.Context) (AgentManifest, error) {
	var out AgentManifest
	return out, c.do(ctx, http.MethodGet, "agent/manifest", nil, &out)
}

// AgentAuthKey mints a single-use, short-lived tailnet auth key whose node
// becomes the calling agent's (POST /agent/authkey).
func (c *Client) AgentAuthKey(ctx context.Context) (AgentAuthKey, error) {
	var out AgentAuthKey
	return out, c.do(ctx, http.MethodPost, "agent/authkey", struct{}{}, &out)
}

// PostAgentInfo publishes the agent's version, platform and SSH host key
// (POST /agent/info).
func (c *Client) PostAgentInfo(ctx context.Context, info AgentInfo) error {
	return c.do(ctx, http.MethodPost, "agent/info", info, nil)
}

// PostAgentLifecycle reports a lifecycle state (POST /agent/lifecycle).
func (c *Client) PostAgentLifecycle(ctx context.Context, state string) error {
	return c.do(ctx, http.MethodPost, "agent/lifecycle", AgentLifecycleRequest{State: state}, nil)
}

// PostAgentLogs appends log lines (POST /agent/logs).
func (c *Client) PostAgentLogs(ctx context.Context, lines []AgentLogLine) error {
	return c.do(ctx, http.MethodPost, "agent/logs", AgentLogsRequest{Lines: lines}, nil)
}

// PostAgentStats reports the agent's counters (POST /agent/stats).
func (c *Client) PostAgentStats(ctx context.Context, st AgentStats) error {
	return c.do(ctx, http.MethodPost, "agent/stats", st, nil)
}
