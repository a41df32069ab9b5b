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
	nodes     map[int64]map[int64][]*control.Node // owner ID -> the owner's agent nodes, by agent ID
	owners    map[int64]string                    // owner ID -> username
	templates map[int64]store.Template            // by ID
	versions  map[int64]int                       // template version ID -> number
}

func (a *API) newWorkspaceViews(c caller) *workspaceViews {
	return &workspaceViews{a: a, c: c, nodes: map[int64]map[int64][]*control.Node{},
		owners: map[int64]string{c.user.ID: c.user.Username}, templates: map[int64]store.Template{}, versions: map[int64]int{}}
}

// owner returns the owner's username and agent nodes.
func (v *workspaceViews) owner(ctx context.Context, id int64) (string, map[int64][]*control.Node, error) {
	name, ok := v.owners[id]
	if !ok {
		u, err := v.a.store.UserByID(ctx, id)
		if err != nil {
			return "", nil, fmt.Errorf("look up owner %d: %w", id, err)
		}
		name = u.Username
		v.owners[id] = name
	}
	nodes, ok := v.nodes[id]
	if !ok {
		nodes = v.a.agentNodes(id)
		v.nodes[id] = nodes
	}
	return name, nodes, nil
}

// view renders ws.
func (v *workspaceViews) view(ctx context.Context, ws store.Workspace) (client.Workspace, error) {
	agents, err := v.a.store.ListAgents(ctx, ws.ID)
	if err != nil {
		return client.Workspace{}, fmt.Errorf("list agents: %w", err)
	}
	owner, nodes, err := v.owner(ctx, ws.OwnerID)
	if err != nil {
		return client.Workspace{}, err
	}
	out := v.a.workspaceJSON(ws, owner, agents, nodes)
	if err := v.a.fillPorts(ctx, &out); err != nil {
		return out, err
	}
	if ws.OwnerID != v.c.user.ID && !v.a.control.Policy().AdminsReachAll {
		out.Unreachable = "the coordinator does not let admins connect to other users' workspaces (devmesh server --admins-reach-all)"
	}
	if ws.IsExternal() {
		return out, nil
	}
	if err := v.template(ctx, ws, &out); err != nil {
		return out, err
	}
	b, err := v.a.store.LatestBuild(ctx, ws.ID)
	var latest *store.Build
	switch {
	case err == nil:
		latest = &b
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
	if out.Schedule, err = v.a.scheduleJSON(ctx, ws, latest); err != nil {
		return out, err
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
