package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/schedule"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/provision"
)

// scheduleRoutes registers the workspace and template schedule endpoints.
// A member changes only their own workspaces' schedules (OWNER/WS is
// refused by pathWorkspace); a template's policy is changed by those who
// may push it.
func (a *API) scheduleRoutes() {
	m := a.mux
	m.Handle("GET /api/v1/workspaces/{name}/schedule", a.authed(a.handleGetSchedule))
	m.Handle("PUT /api/v1/workspaces/{name}/schedule", a.authed(a.handlePutSchedule))
	m.Handle("GET /api/v1/templates/{name}/schedule", a.authed(a.handleGetTemplateSchedule))
	m.Handle("PUT /api/v1/templates/{name}/schedule", a.authed(a.handlePutTemplateSchedule))
}

func badSchedule(format string, args ...any) error {
	return newError(http.StatusBadRequest, client.CodeBadSchedule, format, args...)
}

var errExternalSchedule = badSchedule("an external workspace has no builds to start or stop: schedules apply to workspaces from a template")

// checkSchedule validates an autostart spec ("" for none) and a TTL
// against the template's maximum; errors are API errors.
func checkSchedule(autostart string, ttl, templateMax time.Duration) error {
	if autostart != "" {
		if _, err := schedule.ParseAutostart(autostart); err != nil {
			return badSchedule("%v", err)
		}
	}
	if err := schedule.CheckTTL(ttl, templateMax); err != nil {
		return badSchedule("%v", err)
	}
	return nil
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

// scheduleJSON renders ws's schedule; latest is its latest build (nil if
// none).
func (a *API) scheduleJSON(ctx context.Context, ws store.Workspace, latest *store.Build) (*client.WorkspaceSchedule, error) {
	sc, err := a.store.WorkspaceSchedule(ctx, ws.ID)
	if err != nil {
		return nil, fmt.Errorf("load schedule: %w", err)
	}
	ttl := schedule.EffectiveTTL(sc.TTL, sc.TemplateMaxTTL)
	out := &client.WorkspaceSchedule{
		Autostart:        sc.Autostart,
		TTLMs:            sc.TTL.Milliseconds(),
		EffectiveTTLMs:   ttl.Milliseconds(),
		TemplateMaxTTLMs: sc.TemplateMaxTTL.Milliseconds(),
		LastActivity:     sc.LastActivityAt,
	}
	now := time.Now()
	if sc.Autostart != "" {
		if s, err := schedule.ParseAutostart(sc.Autostart); err == nil {
			out.NextAutostart = s.Next(now)
		}
	}
	if latest != nil && ttl > 0 && latest.Transition == string(provision.TransitionStart) &&
		latest.Status == store.BuildSucceeded && sc.AutostopBuildID != latest.ID {
		out.AutostopAt = schedule.Deadline(latest.FinishedAt, sc.LastActivityAt, ttl)
	}
	return out, nil
}

// latestBuildOf returns the workspace's latest build, nil if it has none.
func (a *API) latestBuildOf(ctx context.Context, ws store.Workspace) (*store.Build, error) {
	b, err := a.store.LatestBuild(ctx, ws.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("latest build: %w", err)
	}
	return &b, nil
}

func (a *API) writeSchedule(w http.ResponseWriter, r *http.Request, ws store.Workspace) error {
	latest, err := a.latestBuildOf(r.Context(), ws)
	if err != nil {
		return err
	}
	out, err := a.scheduleJSON(r.Context(), ws, latest)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) handleGetSchedule(w http.ResponseWriter, r *http.Request, c caller) error {
	ws, err := a.pathWorkspace(r, c)
	if err != nil {
		return err
	}
	if ws.IsExternal() {
		return errExternalSchedule
	}
	return a.writeSchedule(w, r, ws)
}

// handlePutSchedule changes a workspace's autostart and TTL; both are
// validated before either changes.
func (a *API) handlePutSchedule(w http.ResponseWriter, r *http.Request, c caller) error {
	var req client.UpdateScheduleRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	ws, err := a.pathWorkspace(r, c)
	if err != nil {
		return err
	}
	if ws.IsExternal() {
		return errExternalSchedule
	}
	ctx := r.Context()
	sc, err := a.store.WorkspaceSchedule(ctx, ws.ID)
	if err != nil {
		return fmt.Errorf("load schedule: %w", err)
	}
	autostart, ttl := sc.Autostart, sc.TTL
	if req.Autostart != nil {
		autostart = strings.TrimSpace(*req.Autostart)
	}
	if req.TTLMs != nil {
		ttl = msDuration(*req.TTLMs)
	}
	if err := checkSchedule(autostart, ttl, sc.TemplateMaxTTL); err != nil {
		return err
	}
	if err := a.store.SetWorkspaceSchedule(ctx, ws.ID, autostart, ttl, time.Now()); err != nil {
		return fmt.Errorf("set schedule: %w", err)
	}
	a.log.Info("workspace schedule set", "username", c.user.Username, "workspace", ws.Name, "autostart", autostart, "ttl", ttl)
	return a.writeSchedule(w, r, ws)
}

// createSchedule is the schedule a new workspace from template t gets:
// what req asks for, else the template's default TTL; validated before
// the workspace is created.
func (a *API) createSchedule(ctx context.Context, req client.CreateWorkspaceRequest) (string, time.Duration, error) {
	t, err := a.store.TemplateByName(ctx, req.Template)
	if errors.Is(err, store.ErrNotFound) {
		return "", 0, nil // createFromTemplate says so
	}
	if err != nil {
		return "", 0, fmt.Errorf("look up template: %w", err)
	}
	def, maxTTL, err := a.store.TemplateSchedule(ctx, t.ID)
	if err != nil {
		return "", 0, fmt.Errorf("load template schedule: %w", err)
	}
	ttl := def
	if req.TTLMs != nil {
		ttl = msDuration(*req.TTLMs)
	}
	autostart := strings.TrimSpace(req.Autostart)
	return autostart, ttl, checkSchedule(autostart, ttl, maxTTL)
}

// templateForSchedule returns the template named in the path.
func (a *API) templateForSchedule(r *http.Request) (store.Template, error) {
	name := r.PathValue("name")
	t, err := a.store.TemplateByName(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return store.Template{}, errNoTemplate(name)
	}
	if err != nil {
		return store.Template{}, fmt.Errorf("look up template: %w", err)
	}
	return t, nil
}

func (a *API) handleGetTemplateSchedule(w http.ResponseWriter, r *http.Request, c caller) error {
	t, err := a.templateForSchedule(r)
	if err != nil {
		return err
	}
	def, maxTTL, err := a.store.TemplateSchedule(r.Context(), t.ID)
	if err != nil {
		return fmt.Errorf("load template schedule: %w", err)
	}
	writeJSON(w, http.StatusOK, client.TemplateSchedule{DefaultTTLMs: def.Milliseconds(), MaxTTLMs: maxTTL.Milliseconds()})
	return nil
}

// handlePutTemplateSchedule sets a template's default and maximum TTL.
// Workspaces with a longer TTL keep it, but the maximum caps it.
func (a *API) handlePutTemplateSchedule(w http.ResponseWriter, r *http.Request, c caller) error {
	var req client.TemplateSchedule
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	t, err := a.templateForSchedule(r)
	if err != nil {
		return err
	}
	if !mayPush(c.user, t) {
		return newError(http.StatusForbidden, client.CodeForbidden,
			"template %q belongs to %s: only its creator and admins may change its schedule policy", t.Name, t.CreatedByName)
	}
	def, maxTTL := msDuration(req.DefaultTTLMs), msDuration(req.MaxTTLMs)
	if err := schedule.CheckTTL(maxTTL, 0); err != nil {
		return badSchedule("maximum %v", err)
	}
	if err := schedule.CheckTTL(def, maxTTL); err != nil {
		return badSchedule("default %v", err)
	}
	if err := a.store.SetTemplateSchedule(r.Context(), t.ID, def, maxTTL); err != nil {
		return fmt.Errorf("set template schedule: %w", err)
	}
	a.log.Info("template schedule set", "username", c.user.Username, "template", t.Name, "default_ttl", def, "max_ttl", maxTTL)
	writeJSON(w, http.StatusOK, req)
	return nil
}
