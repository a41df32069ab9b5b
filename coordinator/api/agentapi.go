package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	gossh "golang.org/x/crypto/ssh"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/secret"
)

// agentTokenPrefix marks agent tokens ("dma_...").
const agentTokenPrefix = "dma"

// agentAuthKeyLifetime is how long an agent's tailnet auth key is valid:
// long enough to join, short enough that a leaked one is soon useless.
const agentAuthKeyLifetime = 10 * time.Minute

// Limits on what an agent reports about itself.
const (
	maxVersionLen = 64
	maxHostKeyLen = 8 << 10
)

var (
	errAgentUnauthorized = newError(http.StatusUnauthorized, client.CodeUnauthorized,
		"unknown or revoked agent token: its workspace or agent was deleted; create the workspace again for a new token")
	errUserTokenOnAgentAPI = newError(http.StatusUnauthorized, client.CodeUnauthorized,
		"this is a user's token; the agent API takes the agent token (DEVMESH_AGENT_TOKEN) that `devmesh create` printed")
	errLogsFull = newError(http.StatusRequestEntityTooLarge, client.CodeLogsFull,
		"this agent has stored %d log lines, the most it may; later lines are dropped", client.MaxAgentLogsStored)
)

// goPlatformRE matches GOOS and GOARCH values.
var goPlatformRE = regexp.MustCompile(`^[a-z0-9]{0,32}$`)

// agentCaller is the agent a request authenticated as.
type agentCaller struct {
	agent     store.Agent
	workspace store.Workspace
}

type agentFunc func(w http.ResponseWriter, r *http.Request, c agentCaller) error

// agentRoutes registers the agent API. Agent tokens work only here, and
// only agent tokens do.
func (a *API) agentRoutes() {
	m := a.mux
	m.Handle("GET /api/v1/agent/manifest", a.agentAuthed(a.handleAgentManifest))
	m.Handle("POST /api/v1/agent/authkey", a.agentAuthed(a.handleAgentAuthKey))
	m.Handle("POST /api/v1/agent/info", a.agentAuthed(a.handleAgentInfo))
	m.Handle("POST /api/v1/agent/lifecycle", a.agentAuthed(a.handleAgentLifecycle))
	m.Handle("POST /api/v1/agent/logs", a.agentAuthed(a.handleAgentPostLogs))
	m.Handle("POST /api/v1/agent/stats", a.agentAuthed(a.handleAgentStats))
	m.Handle("POST /api/v1/agent/ports", a.agentAuthed(a.handleAgentPorts))
}

// agentAuthed adapts a handler that needs a valid agent token.
func (a *API) agentAuthed(h agentFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := a.authenticateAgent(r)
		if err == nil {
			err = h(w, r, c)
		}
		a.finish(w, r, err)
	})
}

func (a *API) authenticateAgent(r *http.Request) (agentCaller, error) {
	raw, ok := bearerToken(r)
	if !ok {
		return agentCaller{}, errAgentUnauthorized
	}
	if strings.HasPrefix(raw, sessionPrefix+"_") || strings.HasPrefix(raw, apiTokenPrefix+"_") {
		return agentCaller{}, errUserTokenOnAgentAPI
	}
	ctx := r.Context()
	ag, err := a.store.AgentByTokenHash(ctx, secret.Hash(raw))
	if errors.Is(err, store.ErrNotFound) {
		return agentCaller{}, errAgentUnauthorized
	}
	if err != nil {
		return agentCaller{}, fmt.Errorf("look up agent token: %w", err)
	}
	ws, err := a.store.WorkspaceByID(ctx, ag.WorkspaceID)
	if errors.Is(err, store.ErrNotFound) {
		return agentCaller{}, errAgentUnauthorized
	}
	if err != nil {
		return agentCaller{}, fmt.Errorf("look up agent's workspace: %w", err)
	}
	if owner, err := a.store.UserByID(ctx, ws.OwnerID); err != nil {
		return agentCaller{}, fmt.Errorf("look up workspace owner: %w", err)
	} else if owner.Disabled() {
		return agentCaller{}, newError(http.StatusUnauthorized, client.CodeAccountDisabled,
			"the workspace owner's account (%s) is disabled; an admin can enable it", owner.Username)
	}
	return agentCaller{agent: ag, workspace: ws}, nil
}

func (a *API) handleAgentManifest(w http.ResponseWriter, r *http.Request, c agentCaller) error {
	owner, err := a.store.UserByID(r.Context(), c.workspace.OwnerID)
	if err != nil {
		return fmt.Errorf("look up workspace owner: %w", err)
	}
	env := map[string]string{}
	if err := json.Unmarshal([]byte(c.agent.Env), &env); err != nil {
		return fmt.Errorf("agent %d env: %w", c.agent.ID, err)
	}
	writeJSON(w, http.StatusOK, client.AgentManifest{
		WorkspaceID:    c.workspace.ID,
		WorkspaceUUID:  c.workspace.UUID,
		WorkspaceName:  c.workspace.Name,
		Owner:          owner.Username,
		AgentID:        c.agent.ID,
		AgentUUID:      c.agent.UUID,
		AgentName:      c.agent.Name,
		Env:            env,
		StartupScript:  c.agent.StartupScript,
		Dir:            c.agent.Dir,
		CoordinatorURL: a.coordinatorURL(r),
		External:       c.workspace.IsExternal(),
	})
	return nil
}

// coordinatorURL is the access URL, else what the request was sent to.
func (a *API) coordinatorURL(r *http.Request) string {
	if a.accessURL != "" {
		return a.accessURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// handleAgentAuthKey mints a single-use auth key whose node will be this
// agent's, owned by the workspace owner. Earlier unused keys of the agent
// are revoked, so at most one is live.
func (a *API) handleAgentAuthKey(w http.ResponseWriter, r *http.Request, c agentCaller) error {
	ctx := r.Context()
	if _, err := a.store.RevokeAgentAuthKeys(ctx, c.agent.ID); err != nil {
		return fmt.Errorf("revoke earlier agent auth keys: %w", err)
	}
	full, id := secret.New(authKeyPrefix)
	k, err := a.store.CreateAuthKey(ctx, store.AuthKey{
		UserID:     c.workspace.OwnerID,
		AgentID:    c.agent.ID,
		Prefix:     authKeyPrefix + "_" + id,
		SecretHash: secret.Hash(full),
		ExpiresAt:  time.Now().Add(agentAuthKeyLifetime),
	})
	if err != nil {
		return fmt.Errorf("create agent auth key: %w", err)
	}
	a.log.Info("minted agent auth key", "workspace", c.workspace.Name, "agent", c.agent.Name, "key_id", k.ID)
	writeJSON(w, http.StatusCreated, client.AgentAuthKey{Key: full, ExpiresAt: k.ExpiresAt})
	return nil
}

func (a *API) handleAgentInfo(w http.ResponseWriter, r *http.Request, c agentCaller) error {
	var req client.AgentInfo
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if len(req.Version) > maxVersionLen || !printable(req.Version) {
		return badRequest("invalid version: at most %d printable characters", maxVersionLen)
	}
	if !goPlatformRE.MatchString(req.OS) || !goPlatformRE.MatchString(req.Arch) {
		return badRequest("invalid os/arch %q/%q: want Go's GOOS and GOARCH names", req.OS, req.Arch)
	}
	hostKey, err := parseHostKey(req.SSHHostKey)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := a.store.SetAgentInfo(ctx, c.agent.ID, req.Version, hostKey, time.Now()); err != nil {
		return fmt.Errorf("record agent info: %w", err)
	}
	if err := a.store.SetAgentPlatform(ctx, c.agent.ID, req.OS, req.Arch); err != nil {
		return fmt.Errorf("record agent platform: %w", err)
	}
	if c.agent.SSHHostKey != "" && c.agent.SSHHostKey != hostKey {
		a.log.Warn("agent SSH host key changed", "workspace", c.workspace.Name, "agent", c.agent.Name)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// parseHostKey validates one SSH public key in authorized_keys format
// and returns it normalized ("type base64", no comment). Options,
// certificates and more than one key are refused.
func parseHostKey(s string) (string, error) {
	if len(s) > maxHostKeyLen {
		return "", badRequest("ssh_host_key too long")
	}
	pk, _, opts, rest, err := gossh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		return "", badRequest("ssh_host_key is not an SSH public key in authorized_keys format: %v", err)
	}
	if len(opts) > 0 || len(strings.TrimSpace(string(rest))) > 0 {
		return "", badRequest("ssh_host_key must be exactly one key, without options")
	}
	if _, isCert := pk.(*gossh.Certificate); isCert {
		return "", badRequest("ssh_host_key must be a plain public key, not a certificate")
	}
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pk))), nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

var reportableLifecycle = map[string]bool{
	client.LifecycleStarting:     true,
	client.LifecycleReady:        true,
	client.LifecycleStartError:   true,
	client.LifecycleShuttingDown: true,
	client.LifecycleOff:          true,
}

func (a *API) handleAgentLifecycle(w http.ResponseWriter, r *http.Request, c agentCaller) error {
	var req client.AgentLifecycleRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if !reportableLifecycle[req.State] {
		return badRequest("invalid lifecycle state %q: want starting, ready, start_error, shutting_down or off", req.State)
	}
	if err := a.store.SetAgentLifecycle(r.Context(), c.agent.ID, req.State); err != nil {
		return fmt.Errorf("record agent lifecycle: %w", err)
	}
	// An agent that is off holds no connection open.
	if req.State == client.LifecycleOff && c.agent.Connections != 0 {
		if err := a.store.SetAgentStats(r.Context(), c.agent.ID, 0, c.agent.RxBytes, c.agent.TxBytes, time.Now()); err != nil {
			return fmt.Errorf("record agent stats: %w", err)
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) handleAgentPostLogs(w http.ResponseWriter, r *http.Request, c agentCaller) error {
	var req client.AgentLogsRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	logs, err := validateLogLines(req.Lines, time.Now())
	if err != nil || len(logs) == 0 {
		return err
	}
	ctx := r.Context()
	n, err := a.store.CountAgentLogs(ctx, c.agent.ID)
	if err != nil {
		return fmt.Errorf("count agent logs: %w", err)
	}
	if n+int64(len(logs)) > client.MaxAgentLogsStored {
		return errLogsFull
	}
	if err := a.store.AppendAgentLogs(ctx, c.agent.ID, logs); err != nil {
		return fmt.Errorf("append agent logs: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// validateLogLines checks the lines of one request and converts them;
// times in the future become now.
func validateLogLines(lines []client.AgentLogLine, now time.Time) ([]store.AgentLog, error) {
	if len(lines) > client.MaxAgentLogLines {
		return nil, newError(http.StatusRequestEntityTooLarge, client.CodeBodyTooLarge,
			"%d log lines in one request; at most %d", len(lines), client.MaxAgentLogLines)
	}
	out := make([]store.AgentLog, 0, len(lines))
	for i, l := range lines {
		if l.Stream == "" {
			l.Stream = client.StreamStdout
		}
		if l.Stream != client.StreamStdout && l.Stream != client.StreamStderr {
			return nil, badRequest("line %d: invalid stream %q: want stdout or stderr", i, l.Stream)
		}
		if len(l.Output) > client.MaxAgentLogLineBytes {
			return nil, newError(http.StatusRequestEntityTooLarge, client.CodeBodyTooLarge,
				"line %d is %d bytes long; at most %d", i, len(l.Output), client.MaxAgentLogLineBytes)
		}
		at := l.CreatedAt
		if at.IsZero() || at.After(now) {
			at = now
		}
		out = append(out, store.AgentLog{CreatedAt: at, Stream: l.Stream, Output: l.Output})
	}
	return out, nil
}

func (a *API) handleAgentStats(w http.ResponseWriter, r *http.Request, c agentCaller) error {
	var req client.AgentStats
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Connections < 0 || req.RxBytes < 0 || req.TxBytes < 0 || req.Sessions < 0 || req.PortForwards < 0 {
		return badRequest("stats must not be negative")
	}
	// Connections shown are the SSH connections and the forwarded ones
	// that reach the workspace straight over the tailnet.
	open := req.Connections + req.PortForwards
	now := time.Now()
	ctx := r.Context()
	if err := a.store.SetAgentStats(ctx, c.agent.ID, open, req.RxBytes, req.TxBytes, now); err != nil {
		return fmt.Errorf("record agent stats: %w", err)
	}
	// The workspace is in use while a connection is open, and until the
	// moment the last one closed: either pushes its autostop back.
	if open > 0 || req.Sessions > 0 || c.agent.Connections > 0 {
		if err := a.store.RecordWorkspaceActivity(ctx, c.workspace.ID, now); err != nil {
			return fmt.Errorf("record workspace activity: %w", err)
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
