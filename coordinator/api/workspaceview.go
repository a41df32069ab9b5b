package api

import (
	"context"
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
	a        *API
	c        caller
	nodes    map[int64][]*control.Node // the caller's agent nodes, by agent ID
	names    map[int64]string          // template ID -> name
	versions map[int64]int             // template version ID -> number
}

func (a *API) newWorkspaceViews(c caller) *workspaceViews {
	return &workspaceViews{a: a, c: c, nodes: a.agentNodes(c.user.ID), names: map[int64]string{}, versions: map[int64]int{}}
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
	if out.Template, out.TemplateVersion, err = v.template(ctx, ws); err != nil {
		return out, err
	}
	b, err := v.a.store.LatestBuild(ctx, ws.ID)
	switch {
	case err == nil:
		bj := buildJSON(b)
		out.LatestBuild = &bj
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

// template returns the name of ws's template and the number of its
// version.
func (v *workspaceViews) template(ctx context.Context, ws store.Workspace) (string, int, error) {
	name, ok := v.names[ws.TemplateID]
	if !ok {
		t, err := v.a.store.TemplateByID(ctx, ws.TemplateID)
		if err != nil {
			return "", 0, fmt.Errorf("look up template %d: %w", ws.TemplateID, err)
		}
		name = t.Name
		v.names[ws.TemplateID] = name
	}
	n, ok := v.versions[ws.TemplateVersionID]
	if !ok {
		tv, err := v.a.store.TemplateVersionByID(ctx, ws.TemplateVersionID, false)
		if err != nil {
			return "", 0, fmt.Errorf("look up template version %d: %w", ws.TemplateVersionID, err)
		}
		n = tv.Version
		v.versions[ws.TemplateVersionID] = n
	}
	return name, n, nil
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
