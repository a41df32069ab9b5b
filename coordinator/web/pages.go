package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/provision/param"
)

// workspacesView is the workspace list's data.
type workspacesView struct {
	Workspaces []client.Workspace
	All        bool // the admin's list of every user's workspaces
}

func (w *Web) serveWorkspaces(rw http.ResponseWriter, r *http.Request, s *session) error {
	list, err := s.API.ListWorkspaces(r.Context())
	if err != nil {
		return err
	}
	s.Nav, s.Title = "workspaces", "Workspaces"
	w.render(rw, http.StatusOK, "workspaces", s, workspacesView{Workspaces: list})
	return nil
}

func (w *Web) serveAdminWorkspaces(rw http.ResponseWriter, r *http.Request, s *session) error {
	if !s.IsAdmin() {
		return errNotFound
	}
	list, err := s.API.ListAllWorkspaces(r.Context())
	if err != nil {
		return err
	}
	s.Nav, s.Title = "admin", "All workspaces"
	w.render(rw, http.StatusOK, "workspaces", s, workspacesView{Workspaces: list, All: true})
	return nil
}

func (w *Web) serveAdminUsers(rw http.ResponseWriter, r *http.Request, s *session) error {
	if !s.IsAdmin() {
		return errNotFound
	}
	users, err := s.API.ListUsers(r.Context())
	if err != nil {
		return err
	}
	s.Nav, s.Title = "admin", "Users"
	w.render(rw, http.StatusOK, "users", s, users)
	return nil
}

// newWorkspaceView is the create-workspace page's data.
type newWorkspaceView struct {
	Templates []client.Template
	Template  string                  // the chosen one, or ""
	Version   *client.TemplateVersion // its active version
}

func (w *Web) serveNewWorkspace(rw http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	ts, err := s.API.ListTemplates(ctx)
	if err != nil && client.ErrorCode(err) != client.CodeProvisioningDisabled {
		return err
	}
	ts = slices.DeleteFunc(ts, func(t client.Template) bool { return t.Archived })
	v := newWorkspaceView{Templates: ts, Template: r.URL.Query().Get("template")}
	if v.Template == "" && len(ts) == 1 {
		v.Template = ts[0].Name
	}
	if v.Template != "" {
		tv, err := s.API.ActiveTemplateVersion(ctx, v.Template)
		if err != nil {
			return err
		}
		v.Version = &tv
	}
	s.Nav, s.Title = "workspaces", "New workspace"
	w.render(rw, http.StatusOK, "new", s, v)
	return nil
}

// templatesView is the templates page's data.
type templatesView struct {
	Templates []client.Template
	Disabled  bool // the coordinator runs no terraform
	Access    string
}

func (w *Web) serveTemplates(rw http.ResponseWriter, r *http.Request, s *session) error {
	ts, err := s.API.ListTemplates(r.Context())
	v := templatesView{Templates: ts, Access: w.accessURL}
	if client.ErrorCode(err) == client.CodeProvisioningDisabled {
		v.Disabled, err = true, nil
	}
	if err != nil {
		return err
	}
	s.Nav, s.Title = "templates", "Templates"
	w.render(rw, http.StatusOK, "templates", s, v)
	return nil
}

// templateView is one template's page data.
type templateView struct {
	Name     string
	Versions []client.TemplateVersion // newest first
	Active   *client.TemplateVersion
}

func (w *Web) serveTemplate(rw http.ResponseWriter, r *http.Request, s *session) error {
	name := r.PathValue("name")
	vs, err := s.API.TemplateVersions(r.Context(), name)
	if err != nil {
		return err
	}
	slices.Reverse(vs)
	v := templateView{Name: name, Versions: vs}
	for i := range vs {
		if vs[i].Active {
			v.Active = &vs[i]
		}
	}
	s.Nav, s.Title = "templates", "Template "+name
	w.render(rw, http.StatusOK, "template", s, v)
	return nil
}

func (w *Web) serveTokens(rw http.ResponseWriter, r *http.Request, s *session) error {
	ts, err := s.API.ListTokens(r.Context())
	if err != nil {
		return err
	}
	s.Nav, s.Title = "tokens", "API tokens"
	w.render(rw, http.StatusOK, "tokens", s, struct {
		Tokens []client.Token
		CLI    string
	}{ts, w.cliLogin()})
	return nil
}

// paramRow is a parameter with the workspace's value, for display.
type paramRow struct {
	param.Parameter
	Value string
}

// paramRows pairs a version's parameter declarations with values.
func paramRows(ps []param.Parameter, values map[string]string) []paramRow {
	out := make([]paramRow, 0, len(ps))
	seen := map[string]bool{}
	for _, p := range ps {
		out = append(out, paramRow{p, values[p.Name]})
		seen[p.Name] = true
	}
	for k, v := range values { // values of parameters the version no longer declares
		if !seen[k] {
			out = append(out, paramRow{param.Parameter{Name: k}, v})
		}
	}
	slices.SortStableFunc(out[len(ps):], func(a, b paramRow) int { return strings.Compare(a.Name, b.Name) })
	return out
}
