package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/devmesh/devmesh/coordinator/builds"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/provision"
	"github.com/devmesh/devmesh/provision/param"
)

// Build log paging and following.
const (
	maxBuildLogsPage = 1000
	// followWait is how long a follow request waits for a new line or the
	// build's end; under the client's 30s timeout.
	followWait = 25 * time.Second
	// followPoll re-reads the store while following, for changes made by
	// another coordinator (which Changed does not signal).
	followPoll = time.Second
)

func buildJSON(b store.Build) client.Build {
	return client.Build{Workspace: b.WorkspaceName, Number: b.Number, Transition: b.Transition, Status: b.Status,
		Reason: b.Reason, TemplateVersion: b.TemplateVersion, Initiator: b.InitiatorName, InitiatedBy: b.InitiatedBy,
		CreatedAt: b.CreatedAt, StartedAt: b.StartedAt, FinishedAt: b.FinishedAt}
}

// createFromTemplate creates owner's workspace from the active version of
// req.Template and queues its first build (a start), returning both. The
// workspace name must already be validated. Variable values are checked
// against the template's variables, and parameter values against its
// parameters: a missing required one, an unknown one, or a value of the
// wrong type is a 400 (bad_variable, bad_parameter) naming it. Errors are
// API errors, ready to return from a handler.
func (a *API) createFromTemplate(ctx context.Context, owner store.User, req client.CreateWorkspaceRequest) (store.Workspace, store.Build, error) {
	if a.builds == nil {
		return store.Workspace{}, store.Build{}, errProvisioningDisabled
	}
	t, err := a.store.TemplateByName(ctx, req.Template)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.ActiveVersionID == 0) {
		return store.Workspace{}, store.Build{}, errNoTemplate(req.Template)
	}
	if err != nil {
		return store.Workspace{}, store.Build{}, fmt.Errorf("look up template: %w", err)
	}
	if !t.ArchivedAt.IsZero() {
		return store.Workspace{}, store.Build{}, newError(http.StatusBadRequest, client.CodeBadRequest,
			"template %q is archived: it takes no new workspaces until a new version is pushed", t.Name)
	}
	v, err := a.store.TemplateVersionByID(ctx, t.ActiveVersionID, false)
	if err != nil {
		return store.Workspace{}, store.Build{}, fmt.Errorf("load template version: %w", err)
	}
	decls, err := templateVariables(v)
	if err != nil {
		return store.Workspace{}, store.Build{}, err
	}
	if err := provision.CheckValues(decls, req.Variables); err != nil {
		return store.Workspace{}, store.Build{}, newError(http.StatusBadRequest, client.CodeBadVariable,
			"template %s (version %d): %v", t.Name, v.Version, err)
	}
	params, err := resolveParameters(t, v, req.Parameters, nil)
	if err != nil {
		return store.Workspace{}, store.Build{}, err
	}
	vars := req.Variables
	if vars == nil {
		vars = map[string]string{}
	}
	varsJSON, err := json.Marshal(vars)
	if err != nil {
		return store.Workspace{}, store.Build{}, fmt.Errorf("encode variables: %w", err)
	}
	ws, err := a.store.CreateWorkspaceWithin(ctx, store.Workspace{UUID: uuid.NewString(), OwnerID: owner.ID, Name: req.Name,
		TemplateID: t.ID, TemplateVersionID: v.ID, Variables: string(varsJSON)}, a.quota)
	if qerr := quotaError(err); qerr != nil {
		return store.Workspace{}, store.Build{}, qerr
	}
	if errors.Is(err, store.ErrConflict) {
		return store.Workspace{}, store.Build{}, newError(http.StatusConflict, client.CodeConflict, "you already have a workspace called %q", req.Name)
	}
	if err != nil {
		return store.Workspace{}, store.Build{}, fmt.Errorf("create workspace: %w", err)
	}
	b, err := a.queueBuild(ctx, owner, ws, builds.Request{Transition: provision.TransitionStart, Parameters: params})
	if err != nil {
		if derr := a.store.DeleteWorkspace(context.WithoutCancel(ctx), ws.ID); derr != nil {
			a.log.Error("undo workspace creation", "workspace_id", ws.ID, "err", derr)
		}
		return store.Workspace{}, store.Build{}, err
	}
	a.log.Info("created workspace", "username", owner.Username, "workspace", ws.Name, "template", t.Name, "version", v.Version)
	return ws, b, nil
}

// resolveParameters checks parameter values for a build of version v (see
// param.Resolve); previous is nil at create. Errors are API errors.
func resolveParameters(t store.Template, v store.TemplateVersion, given, previous map[string]string) (map[string]string, error) {
	decls, err := templateParameters(v)
	if err != nil {
		return nil, err
	}
	params, err := param.Resolve(decls, given, previous)
	if err != nil {
		code := client.CodeBadParameter
		if errors.Is(err, param.ErrImmutable) {
			code = client.CodeImmutableParameter
		}
		return nil, newError(http.StatusBadRequest, code, "template %s (version %d): %v", t.Name, v.Version, err)
	}
	return params, nil
}

// handleUpdateWorkspace rebuilds a workspace on its template's active
// version: a start build carrying its parameter values, with the changes
// asked for (mutable parameters only).
func (a *API) handleUpdateWorkspace(w http.ResponseWriter, r *http.Request, c caller) error {
	if a.builds == nil {
		return errProvisioningDisabled
	}
	var req client.UpdateWorkspaceRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	ws, err := a.ownWorkspace(r, c)
	if err != nil {
		return err
	}
	if ws.IsExternal() {
		return badRequest("workspace %q is an external workspace (bring your own machine): it has no template to update to", ws.Name)
	}
	ctx := r.Context()
	t, err := a.store.TemplateByID(ctx, ws.TemplateID)
	if err != nil {
		return fmt.Errorf("look up template: %w", err)
	}
	v, err := a.store.TemplateVersionByID(ctx, t.ActiveVersionID, false)
	if err != nil {
		return fmt.Errorf("load template version: %w", err)
	}
	previous, err := a.workspaceParameters(ctx, ws)
	if err != nil {
		return err
	}
	params, err := resolveParameters(t, v, req.Parameters, previous)
	if err != nil {
		return err
	}
	b, err := a.queueBuild(ctx, c.user, ws, builds.Request{Transition: provision.TransitionStart, TemplateVersionID: v.ID, Parameters: params})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, buildJSON(b))
	return nil
}

// workspaceParameters returns the parameter values of ws's latest build
// (empty if it has none).
func (a *API) workspaceParameters(ctx context.Context, ws store.Workspace) (map[string]string, error) {
	values := map[string]string{}
	b, err := a.store.LatestBuild(ctx, ws.ID)
	if errors.Is(err, store.ErrNotFound) {
		return values, nil
	}
	if err != nil {
		return nil, fmt.Errorf("latest build: %w", err)
	}
	if err := json.Unmarshal([]byte(b.Parameters), &values); err != nil {
		return nil, fmt.Errorf("build %d: stored parameters: %w", b.ID, err)
	}
	return values, nil
}

// startBuild queues a build of ws (start, stop or delete) on behalf of
// initiator, with the workspace's version and parameters. Errors are API
// errors.
func (a *API) startBuild(ctx context.Context, initiator store.User, ws store.Workspace, transition string) (store.Build, error) {
	return a.queueBuild(ctx, initiator, ws, builds.Request{Transition: provision.Transition(transition)})
}

// queueBuild queues req for ws on behalf of initiator. Errors are API
// errors.
func (a *API) queueBuild(ctx context.Context, initiator store.User, ws store.Workspace, req builds.Request) (store.Build, error) {
	if a.builds == nil {
		return store.Build{}, errProvisioningDisabled
	}
	req.Workspace, req.InitiatorID = ws, initiator.ID
	transition := string(req.Transition)
	b, err := a.builds.Enqueue(ctx, req)
	var busy *store.BuildInProgressError
	switch {
	case errors.As(err, &busy):
		return b, errBuildInProgress(ws.Name, busy.Build)
	case errors.Is(err, provision.ErrBadTransition):
		return b, badRequest("invalid transition %q: want start, stop or delete", transition)
	case errors.Is(err, builds.ErrExternalWorkspace):
		return b, badRequest("workspace %q is an external workspace (bring your own machine): it has no template to build", ws.Name)
	case errors.Is(err, store.ErrConflict):
		return b, newError(http.StatusConflict, client.CodeConflict, "workspace %q is being deleted", ws.Name)
	case err != nil:
		return b, fmt.Errorf("queue build: %w", err)
	}
	a.log.Info("queued build", "username", initiator.Username, "workspace", ws.Name, "number", b.Number, "transition", transition)
	return b, nil
}

// errBuildInProgress refuses a start or stop while another is queued or
// running: one at a time per workspace, so no one can fill the queue.
func errBuildInProgress(ws string, b store.Build) *apiError {
	if b.ID == 0 {
		return newError(http.StatusConflict, client.CodeBuildInProgress,
			"workspace %q already has a build queued or running; wait for it, or cancel it with `devmesh cancel %s`", ws, ws)
	}
	return newError(http.StatusConflict, client.CodeBuildInProgress,
		"workspace %q already has build #%d (%s) %s; one build at a time: wait for it (`devmesh builds %s --follow %d`) or cancel it (`devmesh cancel %s --build %d`)",
		ws, b.Number, b.Transition, b.Status, ws, b.Number, ws, b.Number)
}

// ownWorkspace returns the workspace named in the path (see
// pathWorkspace).
func (a *API) ownWorkspace(r *http.Request, c caller) (store.Workspace, error) {
	return a.pathWorkspace(r, c)
}

// pathBuild returns the build of ws named in the path: a number or
// "latest".
func (a *API) pathBuild(r *http.Request, ws store.Workspace) (store.Build, error) {
	s := r.PathValue("number")
	var b store.Build
	var err error
	if s == "latest" {
		b, err = a.store.LatestBuild(r.Context(), ws.ID)
	} else {
		n, perr := strconv.Atoi(s)
		if perr != nil || n <= 0 {
			return b, badRequest("invalid build %q: want a build number or \"latest\"", s)
		}
		b, err = a.store.BuildByNumber(r.Context(), ws.ID, n)
	}
	if errors.Is(err, store.ErrNotFound) {
		return b, newError(http.StatusNotFound, client.CodeNotFound, "workspace %q has no build %s", ws.Name, s)
	}
	if err != nil {
		return b, fmt.Errorf("look up build: %w", err)
	}
	return b, nil
}

func (a *API) handleCreateBuild(w http.ResponseWriter, r *http.Request, c caller) error {
	var req client.CreateBuildRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	ws, err := a.ownWorkspace(r, c)
	if err != nil {
		return err
	}
	b, err := a.startBuild(r.Context(), c.user, ws, req.Transition)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, buildJSON(b))
	return nil
}

func (a *API) handleListBuilds(w http.ResponseWriter, r *http.Request, c caller) error {
	ws, err := a.ownWorkspace(r, c)
	if err != nil {
		return err
	}
	list, err := a.store.ListBuilds(r.Context(), ws.ID)
	if err != nil {
		return fmt.Errorf("list builds: %w", err)
	}
	out := make([]client.Build, 0, len(list))
	for _, b := range list {
		out = append(out, buildJSON(b))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) handleGetBuild(w http.ResponseWriter, r *http.Request, c caller) error {
	ws, err := a.ownWorkspace(r, c)
	if err != nil {
		return err
	}
	b, err := a.pathBuild(r, ws)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, buildJSON(b))
	return nil
}

func (a *API) handleCancelBuild(w http.ResponseWriter, r *http.Request, c caller) error {
	if a.builds == nil {
		return errProvisioningDisabled
	}
	ws, err := a.ownWorkspace(r, c)
	if err != nil {
		return err
	}
	b, err := a.pathBuild(r, ws)
	if err != nil {
		return err
	}
	b, err = a.builds.Cancel(r.Context(), b.ID, c.user.Username)
	if errors.Is(err, builds.ErrFinished) {
		return newError(http.StatusConflict, client.CodeBuildFinished, "build #%d of %q has already finished (%s)", b.Number, ws.Name, b.Status)
	}
	if err != nil {
		return fmt.Errorf("cancel build: %w", err)
	}
	writeJSON(w, http.StatusOK, buildJSON(b))
	return nil
}

// handleBuildLogs returns log lines after ?after=ID with the build. With
// ?follow=true it waits, up to followWait, for a line or the build's end.
// The build is read before the lines, so that when it is finished the
// page holds every line up to the last.
func (a *API) handleBuildLogs(w http.ResponseWriter, r *http.Request, c caller) error {
	q := r.URL.Query()
	after := int64(0)
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return badRequest("invalid after=%q: want a log line ID (0 or more)", s)
		}
		after = n
	}
	follow, _ := strconv.ParseBool(q.Get("follow"))
	ws, err := a.ownWorkspace(r, c)
	if err != nil {
		return err
	}
	b, err := a.pathBuild(r, ws)
	if err != nil {
		return err
	}
	ctx := r.Context()
	deadline := time.NewTimer(followWait)
	defer deadline.Stop()
	for {
		var changed <-chan struct{}
		if a.builds != nil {
			changed = a.builds.Changed(b.ID)
		}
		b, err = a.store.BuildByID(ctx, b.ID)
		if errors.Is(err, store.ErrNotFound) {
			return newError(http.StatusNotFound, client.CodeNotFound, "workspace %q is gone (deleted)", ws.Name)
		}
		if err != nil {
			return fmt.Errorf("look up build: %w", err)
		}
		logs, err := a.store.ListBuildLogs(ctx, b.ID, after, maxBuildLogsPage)
		if err != nil {
			return fmt.Errorf("list build logs: %w", err)
		}
		if !follow || len(logs) > 0 || b.Finished() {
			out := client.BuildLogs{Build: buildJSON(b), Logs: make([]client.BuildLog, 0, len(logs))}
			for _, l := range logs {
				out.Logs = append(out.Logs, client.BuildLog{ID: l.ID, Time: l.CreatedAt, Stage: l.Stage, Level: l.Level, Output: l.Output})
			}
			writeJSON(w, http.StatusOK, out)
			return nil
		}
		select {
		case <-changed:
		case <-time.After(followPoll):
		case <-deadline.C:
			follow = false // answer with what there is (nothing)
		case <-ctx.Done():
			return nil
		}
	}
}
