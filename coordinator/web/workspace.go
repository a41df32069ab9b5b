package web

import (
	"net/http"
	"net/url"

	"github.com/devmesh/devmesh/coordinator/client"
)

// maxAgentLogLines is how many of an agent's latest log lines the
// workspace page shows.
const maxAgentLogLines = 200

// workspaceView is the workspace page's data.
type workspaceView struct {
	WS     client.Workspace
	Ref    string // how the API names it (path-escaped)
	Own    bool   // the session's user owns it
	State  string
	Builds []client.Build // newest first
	// Log is the latest build's log so far; LogDone says whether the
	// build has finished (else the page's script follows it).
	Log      []client.BuildLog
	LogAfter int64
	LogDone  bool
	Latest   *client.Build
	Params   []paramRow
	Agents   []agentView
	Terminal string // the browser terminal's URL
	SSHHost  string // the config-ssh host name
}

// agentView is an agent with its latest log lines.
type agentView struct {
	client.Agent
	Logs []client.AgentLog
}

// serveWorkspace is /@OWNER/WS. A member asking for another user's
// workspace gets the same 404 as for a missing one; an admin sees it.
func (w *Web) serveWorkspace(rw http.ResponseWriter, r *http.Request, s *session, owner, name string) error {
	own := owner == s.User.Username
	if !own && !s.IsAdmin() {
		return errNotFound
	}
	ref := name
	if !own {
		ref = owner + "/" + name
	}
	ctx := r.Context()
	ws, err := s.API.Workspace(ctx, ref)
	if err != nil {
		return err
	}
	v := workspaceView{WS: ws, Ref: url.PathEscape(ref), Own: own, State: workspaceState(ws),
		Terminal: "/@" + url.PathEscape(owner) + "/" + url.PathEscape(name) + "/terminal",
		SSHHost:  "devmesh." + name}
	if err := w.loadBuilds(r, s, ref, &v); err != nil {
		return err
	}
	for _, a := range ws.Agents {
		logs, err := s.API.AgentLogs(ctx, ref, a.Name, 0)
		if err != nil {
			return err
		}
		if len(logs) > maxAgentLogLines {
			logs = logs[len(logs)-maxAgentLogLines:]
		}
		v.Agents = append(v.Agents, agentView{Agent: a, Logs: logs})
	}
	s.Nav, s.Title = "workspaces", ws.Owner+"/"+ws.Name
	w.render(rw, http.StatusOK, "workspace", s, v)
	return nil
}

// loadBuilds fills in the builds, the latest build's log so far and the
// parameters of a workspace from a template.
func (w *Web) loadBuilds(r *http.Request, s *session, ref string, v *workspaceView) error {
	if v.WS.Template == "" {
		return nil
	}
	ctx := r.Context()
	bs, err := s.API.ListBuilds(ctx, ref)
	if err != nil {
		return err
	}
	for i := len(bs) - 1; i >= 0; i-- {
		v.Builds = append(v.Builds, bs[i])
	}
	if len(v.Builds) > 0 {
		latest := v.Builds[0]
		page, err := s.API.BuildLogs(ctx, ref, latest.Number, 0, false)
		if err != nil {
			return err
		}
		v.Latest, v.Log, v.LogDone = &page.Build, page.Logs, page.Build.Finished()
		if n := len(page.Logs); n > 0 {
			v.LogAfter = page.Logs[n-1].ID
		}
	}
	versions, err := s.API.TemplateVersions(ctx, v.WS.Template)
	if err != nil {
		return err
	}
	for _, tv := range versions {
		if tv.Version == v.WS.TemplateVersion {
			v.Params = paramRows(tv.Parameters, v.WS.Parameters)
			return nil
		}
	}
	v.Params = paramRows(nil, v.WS.Parameters)
	return nil
}
