package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/control"
	"github.com/devmesh/devmesh/coordinator/store"
)

// workspaceViews renders workspaces of the caller: their agents with
// their connection state, and for a workspace from a template the
// template, its latest build and its metadata. It remembers template
// names and version numbers across the workspaces of one request.
type workspaceViews struct {
	a         *API
	c         caller
	nodes     map[int64][]*control.Node // the caller's agent nodes, by agent ID
	templates map[int64]store.Template  // by ID
	versions  map[int64]int             // template version ID -> number
}

func (a *API) newWorkspaceViews(c caller) *workspaceViews {
	return &workspaceViews{a: a, c: c, nodes: a.agentNodes(c.user.ID), templates: map[int64]store.Template{}, versions: map[int64]int{}}
}

// view renders ws.
func (v *workspaceViews) view(ctx context.Context, ws store.Workspace) (client.Workspace, error) {
	agents, err := v.a.store.ListAgents(ctx, ws.ID)
	if err != nil {
		return client.Workspace{}, fmt.Errorf("list agents: %w", err)
	}
	out := v.a.workspaceJSON(ws, v.c.user.Username, agents, v.nodes)
	if ws.IsExternal() {
		return out, nil
	}
	if err := v.template(ctx, ws, &out); err != nil {
		return out, err
	}
	b, err := v.a.store.LatestBuild(ctx, ws.ID)
	switch {
	case err == nil:
		bj := buildJSON(b)
		out.LatestBuild = &bj
		if err := json.Unmarshal([]byte(b.Parameters), &out.Parameters); err != nil {
			return out, fmt.Errorf("build %d: stored parameters: %w", b.ID, err)
		}
		if len(out.Parameters) == 0 {
			out.Parameters = nil
		}
	case !errors.Is(err, store.ErrNotFound):
		return out, fmt.Errorf("latest build: %w", err)
	}
	items, err := v.a.store.ListWorkspaceMetadata(ctx, ws.ID)
	if err != nil {
		return out, fmt.Errorf("list metadata: %w", err)
	}
	out.Metadata = metadataJSON(items, v.c.user.IsAdmin())
	return out, nil
}

// template fills in ws's template, the number of its version, the
// template's active version and whether ws is outdated.
func (v *workspaceViews) template(ctx context.Context, ws store.Workspace, out *client.Workspace) error {
	t, ok := v.templates[ws.TemplateID]
	if !ok {
		var err error
		if t, err = v.a.store.TemplateByID(ctx, ws.TemplateID); err != nil {
			return fmt.Errorf("look up template %d: %w", ws.TemplateID, err)
		}
		v.templates[ws.TemplateID] = t
	}
	n, ok := v.versions[ws.TemplateVersionID]
	if !ok {
		tv, err := v.a.store.TemplateVersionByID(ctx, ws.TemplateVersionID, false)
		if err != nil {
			return fmt.Errorf("look up template version %d: %w", ws.TemplateVersionID, err)
		}
		n = tv.Version
		v.versions[ws.TemplateVersionID] = n
	}
	out.Template, out.TemplateVersion, out.ActiveVersion = t.Name, n, t.ActiveVersion
	out.Outdated = t.ActiveVersionID != 0 && t.ActiveVersionID != ws.TemplateVersionID
	return nil
}

// metadataJSON renders metadata items; the values of sensitive ones are
// left out unless showSensitive.
func metadataJSON(items []store.MetadataItem, showSensitive bool) []client.MetadataItem {
	if len(items) == 0 {
		return nil
	}
	out := make([]client.MetadataItem, 0, len(items))
	for _, m := range items {
		item := client.MetadataItem{Resource: m.Resource, Key: m.Key, Value: m.Value, Sensitive: m.Sensitive}
		if m.Sensitive && !showSensitive {
			item.Value, item.Hidden = "", true
		}
		out = append(out, item)
	}
	return out
}
