package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/secret"
)

// defaultAgentName names the one agent of an external workspace.
const defaultAgentName = "main"

// maxLogsPage bounds the log lines one GET returns; clients page with
// ?after=.
const maxLogsPage = 1000

// workspaceRoutes registers the user-facing workspace endpoints. A
// workspace of another user is answered exactly like a missing one.
func (a *API) workspaceRoutes() {
	m := a.mux
	m.Handle("POST /api/v1/workspaces", a.authed(a.handleCreateWorkspace))
	m.Handle("GET /api/v1/workspaces", a.authed(a.handleListWorkspaces))
	m.Handle("GET /api/v1/workspaces/{name}", a.authed(a.handleGetWorkspace))
	m.Handle("DELETE /api/v1/workspaces/{name}", a.authed(a.handleDeleteWorkspace))
	m.Handle("GET /api/v1/workspaces/{name}/agents/{agent}/logs", a.authed(a.handleAgentLogs))
}

// Workspace names become DNS labels (the agent node's hostname, ssh host
// aliases), so they follow the username rule.
func validateWorkspaceName(name string) error {
	if !usernameRE.MatchString(name) {
		return badRequest("invalid workspace name %q: use 1-32 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen", name)
	}
	return nil
}

func errNoWorkspace(name string) error {
	return newError(http.StatusNotFound, client.CodeNotFound, "you have no workspace called %q", name)
}

func (a *API) handleCreateWorkspace(w http.ResponseWriter, r *http.Request, c caller) error {
	var req client.CreateWorkspaceRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := validateWorkspaceName(req.Name); err != nil {
		return err
	}
	switch {
	case req.External && req.Template != "":
		return badRequest("a workspace is either external or from a template, not both")
	case req.Template != "":
		return a.createTemplateWorkspace(w, r, c, req)
	case !req.External:
		return badRequest("say how to create the workspace: external (bring your own machine) or from a template")
	case len(req.Variables) > 0:
		return badRequest("variables apply only to workspaces from a template")
	case req.Autostart != "" || req.TTLMs != nil:
		return errExternalSchedule
	}
	created, err := a.createExternalWorkspace(r.Context(), c.user, req.Name)
	if err != nil {
		return err
	}
	a.log.Info("created workspace", "username", c.user.Username, "workspace", req.Name, "external", true)
	writeJSON(w, http.StatusCreated, created)
	return nil
}

// createTemplateWorkspace creates a workspace from a template and queues
// its first build (a start); it answers with both. The workspace's agents
// appear when that build has succeeded.
func (a *API) createTemplateWorkspace(w http.ResponseWriter, r *http.Request, c caller, req client.CreateWorkspaceRequest) error {
	ctx := r.Context()
	autostart, ttl, err := a.createSchedule(ctx, req)
	if err != nil {
		return err
	}
	ws, b, err := a.createFromTemplate(ctx, c.user, req)
	if err != nil {
		return err
	}
	if autostart != "" || ttl != 0 {
		if err := a.store.SetWorkspaceSchedule(ctx, ws.ID, autostart, ttl, time.Now()); err != nil {
			return fmt.Errorf("set schedule of workspace %q (created, its first build queued): %w", ws.Name, err)
		}
	}
	view, err := a.newWorkspaceViews(c).view(ctx, ws)
	if err != nil {
		return err
	}
	bj := buildJSON(b)
	writeJSON(w, http.StatusCreated, client.CreatedWorkspace{Workspace: view, Build: &bj})
	return nil
}

// createExternalWorkspace creates a workspace with one agent and returns
// it with the agent's token, the only time the token is seen.
func (a *API) createExternalWorkspace(ctx context.Context, owner store.User, name string) (client.CreatedWorkspace, error) {
	ws, err := a.store.CreateWorkspaceWithin(ctx, store.Workspace{UUID: uuid.NewString(), OwnerID: owner.ID, Name: name}, a.quota)
	if qerr := quotaError(err); qerr != nil {
		return client.CreatedWorkspace{}, qerr
	}
	if errors.Is(err, store.ErrConflict) {
		return client.CreatedWorkspace{}, newError(http.StatusConflict, client.CodeConflict, "you already have a workspace called %q", name)
	}
	if err != nil {
		return client.CreatedWorkspace{}, fmt.Errorf("create workspace: %w", err)
	}
	token, _ := secret.New(agentTokenPrefix)
	ag, err := a.store.CreateAgent(ctx, store.Agent{
		UUID:        uuid.NewString(),
		WorkspaceID: ws.ID,
		Name:        defaultAgentName,
		TokenHash:   secret.Hash(token),
	})
	if err != nil {
		if derr := a.store.DeleteWorkspace(context.WithoutCancel(ctx), ws.ID); derr != nil {
			a.log.Error("undo workspace creation", "workspace_id", ws.ID, "err", derr)
		}
		return client.CreatedWorkspace{}, fmt.Errorf("create agent: %w", err)
	}
	out := a.workspaceJSON(ws, owner.Username, []store.Agent{ag}, nil)
	return client.CreatedWorkspace{Workspace: out, AgentToken: token}, nil
}

// handleListWorkspaces lists the caller's workspaces; with ?all=true
// (admins only) every user's.
func (a *API) handleListWorkspaces(w http.ResponseWriter, r *http.Request, c caller) error {
	ctx := r.Context()
	owner := c.user.ID
	if all, _ := strconv.ParseBool(r.URL.Query().Get("all")); all {
		if !c.user.IsAdmin() {
			return newError(http.StatusForbidden, client.CodeForbidden, "listing every user's workspaces (--all) needs the admin role")
		}
		owner = 0
	}
	list, err := a.store.ListWorkspaces(ctx, owner)
	if err != nil {
		return fmt.Errorf("list workspaces: %w", err)
	}
	views := a.newWorkspaceViews(c)
	out := make([]client.Workspace, 0, len(list))
	for _, ws := range list {
		v, err := views.view(ctx, ws)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// callerWorkspace returns the workspace named in the path (see
// pathWorkspace).
func (a *API) callerWorkspace(r *http.Request, c caller) (store.Workspace, error) {
	return a.pathWorkspace(r, c)
}

// pathWorkspace returns the workspace named in the path: WS, one of the
// caller's, or OWNER/WS. Only admins name another user's workspace as
// OWNER/WS (a member is refused with 403, whether or not it exists);
// a member's WS never finds another user's workspace (404, as if it did
// not exist).
func (a *API) pathWorkspace(r *http.Request, c caller) (store.Workspace, error) {
	full := r.PathValue("name")
	ownerName, name, qualified := strings.Cut(full, "/")
	if !qualified {
		name = full
	}
	owner := c.user
	if qualified && ownerName != c.user.Username {
		if !c.user.IsAdmin() {
			return store.Workspace{}, newError(http.StatusForbidden, client.CodeForbidden,
				"only admins address other users' workspaces as OWNER/WS; yours are addressed by name alone")
		}
		u, err := a.store.UserByName(r.Context(), ownerName)
		if errors.Is(err, store.ErrNotFound) {
			return store.Workspace{}, newError(http.StatusNotFound, client.CodeNotFound, "there is no user called %q", ownerName)
		}
		if err != nil {
			return store.Workspace{}, fmt.Errorf("look up user: %w", err)
		}
		owner = u
	}
	ws, err := a.store.WorkspaceByName(r.Context(), owner.ID, name)
	if errors.Is(err, store.ErrNotFound) {
		if owner.ID != c.user.ID {
			return store.Workspace{}, newError(http.StatusNotFound, client.CodeNotFound, "%s has no workspace called %q", owner.Username, name)
		}
		return store.Workspace{}, errNoWorkspace(name)
	}
	if err != nil {
		return store.Workspace{}, fmt.Errorf("look up workspace: %w", err)
	}
	return ws, nil
}

func (a *API) handleGetWorkspace(w http.ResponseWriter, r *http.Request, c caller) error {
	ws, err := a.callerWorkspace(r, c)
	if err != nil {
		return err
	}
	v, err := a.newWorkspaceViews(c).view(r.Context(), ws)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// handleDeleteWorkspace deletes a workspace. One from a template is
// deleted by a delete build (terraform destroy), queued here and answered
// with 202: the workspace goes when that build succeeds. An external
// workspace is deleted at once (204): the rows go first, so the agents'
// tokens stop working and no new auth key can be minted; then the agents'
// unused auth keys are revoked and their nodes leave the tailnet.
func (a *API) handleDeleteWorkspace(w http.ResponseWriter, r *http.Request, c caller) error {
	ws, err := a.callerWorkspace(r, c)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if !ws.IsExternal() {
		b, err := a.startBuild(ctx, c.user, ws, client.TransitionDelete)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusAccepted, buildJSON(b))
		return nil
	}
	agents, err := a.store.ListAgents(ctx, ws.ID)
	if err != nil {
		return fmt.Errorf("list agents: %w", err)
	}
	if err := a.store.DeleteWorkspace(ctx, ws.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errNoWorkspace(ws.Name)
		}
		return fmt.Errorf("delete workspace: %w", err)
	}
	// The workspace is gone; finish even if the client hangs up.
	ctx = context.WithoutCancel(ctx)
	removed, err := a.removeAgentsFromTailnet(ctx, agents)
	a.log.Info("deleted workspace", "username", c.user.Username, "workspace", ws.Name, "agents", len(agents), "nodes_removed", removed)
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// removeAgentsFromTailnet revokes the agents' auth keys and deletes their
// nodes, returning how many nodes it deleted.
func (a *API) removeAgentsFromTailnet(ctx context.Context, agents []store.Agent) (int, error) {
	removed := 0
	var errs []error
	for _, ag := range agents {
		if _, err := a.store.RevokeAgentAuthKeys(ctx, ag.ID); err != nil {
			errs = append(errs, fmt.Errorf("revoke auth keys of agent %d: %w", ag.ID, err))
		}
		ids := map[int64]bool{}
		nodes, err := a.store.NodesOfAgent(ctx, ag.ID)
		if err != nil {
			errs = append(errs, fmt.Errorf("list nodes of agent %d: %w", ag.ID, err))
		}
		for _, n := range nodes {
			ids[n.ID] = true
		}
		// A node registering right now may be in the registry before
		// the query above saw it, or the other way round: take both.
		for _, n := range a.control.Registry().Nodes(0) {
			if n.AgentID == ag.ID {
				ids[int64(n.ID)] = true
			}
		}
		for id := range ids {
			if err := a.control.DeleteNode(ctx, id); err != nil {
				errs = append(errs, fmt.Errorf("delete node %d of agent %d: %w", id, ag.ID, err))
				continue
			}
			removed++
		}
	}
	return removed, errors.Join(errs...)
}

func (a *API) handleAgentLogs(w http.ResponseWriter, r *http.Request, c caller) error {
	after := int64(0)
	if s := r.URL.Query().Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return badRequest("invalid after=%q: want a log line ID (0 or more)", s)
		}
		after = n
	}
	ws, err := a.callerWorkspace(r, c)
	if err != nil {
		return err
	}
	ctx := r.Context()
	agents, err := a.store.ListAgents(ctx, ws.ID)
	if err != nil {
		return fmt.Errorf("list agents: %w", err)
	}
	name := r.PathValue("agent")
	for _, ag := range agents {
		if ag.Name != name {
			continue
		}
		logs, err := a.store.ListAgentLogs(ctx, ag.ID, after, maxLogsPage)
		if err != nil {
			return fmt.Errorf("list agent logs: %w", err)
		}
		out := make([]client.AgentLog, 0, len(logs))
		for _, l := range logs {
			out = append(out, client.AgentLog{ID: l.ID, CreatedAt: l.CreatedAt, Stream: l.Stream, Output: l.Output})
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	return newError(http.StatusNotFound, client.CodeNotFound, "workspace %q has no agent called %q", ws.Name, name)
}
