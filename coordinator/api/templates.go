package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"

	"github.com/hashicorp/hcl/v2"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/provision"
	"github.com/devmesh/devmesh/provision/param"
)

// Template names appear in URLs and tables.
var templateNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$`)

// maxMessageLen bounds a template version's message (bytes).
const maxMessageLen = 1000

var errProvisioningDisabled = newError(http.StatusServiceUnavailable, client.CodeProvisioningDisabled,
	"this coordinator runs no terraform (provisioning is disabled): templates and builds are unavailable")

// provisioningRoutes registers the template and build endpoints.
func (a *API) provisioningRoutes() {
	m := a.mux
	m.Handle("GET /api/v1/templates", a.authed(a.handleListTemplates))
	m.Handle("POST /api/v1/templates/{name}/versions", a.authed(a.handlePushTemplate))
	m.Handle("GET /api/v1/templates/{name}/versions", a.authed(a.handleListTemplateVersions))
	m.Handle("GET /api/v1/templates/{name}/versions/{version}/archive", a.authed(a.handleTemplateArchive))
	m.Handle("POST /api/v1/templates/{name}/versions/{version}/activate", a.authed(a.handleActivateTemplateVersion))
	m.Handle("POST /api/v1/templates/{name}/archive", a.authed(a.handleArchiveTemplate))
	m.Handle("DELETE /api/v1/templates/{name}", a.authed(a.handleDeleteTemplate))
	m.Handle("POST /api/v1/workspaces/{name}/update", a.authed(a.handleUpdateWorkspace))
	m.Handle("POST /api/v1/workspaces/{name}/builds", a.authed(a.handleCreateBuild))
	m.Handle("GET /api/v1/workspaces/{name}/builds", a.authed(a.handleListBuilds))
	m.Handle("GET /api/v1/workspaces/{name}/builds/{number}", a.authed(a.handleGetBuild))
	m.Handle("GET /api/v1/workspaces/{name}/builds/{number}/logs", a.authed(a.handleBuildLogs))
	m.Handle("POST /api/v1/workspaces/{name}/builds/{number}/cancel", a.authed(a.handleCancelBuild))
}

func validateTemplateName(name string) error {
	if !templateNameRE.MatchString(name) {
		return badRequest("invalid template name %q: use 1-64 lowercase letters, digits, '-' and '_', starting and ending with a letter or digit", name)
	}
	return nil
}

func errNoTemplate(name string) error {
	return newError(http.StatusNotFound, client.CodeNotFound, "there is no template called %q (see `devmesh templates list`)", name)
}

// mayPush says whether u may push a new version of t: admins and the
// template's creator may. Only admins create templates.
func mayPush(u store.User, t store.Template) bool { return u.IsAdmin() || t.CreatedBy == u.ID }

func (a *API) handlePushTemplate(w http.ResponseWriter, r *http.Request, c caller) error {
	if a.builds == nil {
		return errProvisioningDisabled
	}
	ctx := r.Context()
	name := r.PathValue("name")
	if err := validateTemplateName(name); err != nil {
		return err
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != client.TemplateArchiveType {
		return newError(http.StatusUnsupportedMediaType, client.CodeBadRequest,
			"send the template archive as %s (an uncompressed tar stream)", client.TemplateArchiveType)
	}
	message := r.URL.Query().Get("message")
	if len(message) > maxMessageLen {
		return badRequest("message too long: at most %d bytes", maxMessageLen)
	}
	tpl, err := a.store.TemplateByName(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if !c.user.IsAdmin() {
			return newError(http.StatusForbidden, client.CodeForbidden, "there is no template %q, and creating a template needs the admin role", name)
		}
	case err != nil:
		return fmt.Errorf("look up template: %w", err)
	case !mayPush(c.user, tpl):
		return newError(http.StatusForbidden, client.CodeForbidden,
			"template %q belongs to %s: only its creator and admins may push new versions", name, tpl.CreatedByName)
	}
	archive, err := a.readArchive(w, r)
	if err != nil {
		return err
	}
	mod, err := a.builds.ValidateTemplate(ctx, archive)
	if err != nil {
		return templateError(err)
	}
	varsJSON, err := json.Marshal(mod.Variables)
	if err != nil {
		return fmt.Errorf("encode variables: %w", err)
	}
	paramsJSON, err := json.Marshal(mod.Parameters)
	if err != nil {
		return fmt.Errorf("encode parameters: %w", err)
	}
	sum := sha256.Sum256(archive)
	tpl, v, err := a.store.PushTemplateVersion(ctx, name, store.TemplateVersion{
		Message: message, Archive: archive, ArchiveHash: hex.EncodeToString(sum[:]), Variables: string(varsJSON),
		Parameters: string(paramsJSON), CreatedBy: c.user.ID,
	})
	if errors.Is(err, store.ErrConflict) {
		return newError(http.StatusConflict, client.CodeConflict, "another push of template %q happened at the same time; push again", name)
	}
	if err != nil {
		return fmt.Errorf("store template version: %w", err)
	}
	a.log.Info("pushed template version", "username", c.user.Username, "template", name, "version", v.Version, "bytes", len(archive))
	out, err := versionJSON(tpl, v)
	if err != nil {
		return err
	}
	if mod.Agents == 0 {
		out.Warnings = append(out.Warnings, "the template has no devmesh_agent resource: its workspaces will have no agent to connect to (ssh, port-forward)")
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// readArchive reads a pushed archive and checks it is safe (see
// provision.Validate): too large, malformed or unsafe is a bad template.
func (a *API) readArchive(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := a.builds.MaxArchiveBytes()
	archive, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, newError(http.StatusBadRequest, client.CodeBadTemplate, "%v: more than %d bytes", provision.ErrArchiveTooLarge, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("read template archive: %w", err)
	}
	if err := provision.Validate(archive, limit); err != nil {
		return nil, templateError(err)
	}
	return archive, nil
}

// templateError answers the template's own problems (unsafe archive,
// terraform's diagnostics, a backend block) with 400 and their message;
// anything else is an internal error.
func templateError(err error) error {
	var te *provision.TerraformError
	var ae *provision.ArchiveError
	var pe *provision.ParameterError
	var diags hcl.Diagnostics
	switch {
	case errors.As(err, &te), errors.As(err, &ae), errors.As(err, &diags), errors.As(err, &pe),
		errors.Is(err, provision.ErrBackendConfigured), errors.Is(err, provision.ErrEmptyTemplate):
		return newError(http.StatusBadRequest, client.CodeBadTemplate, "template rejected: %v", err)
	}
	return err
}

func (a *API) handleListTemplates(w http.ResponseWriter, r *http.Request, c caller) error {
	all, _ := strconv.ParseBool(r.URL.Query().Get("all"))
	list, err := a.store.ListTemplates(r.Context(), all)
	if err != nil {
		return fmt.Errorf("list templates: %w", err)
	}
	out := make([]client.Template, 0, len(list))
	for _, t := range list {
		out = append(out, client.Template{Name: t.Name, ActiveVersion: t.ActiveVersion, CreatedBy: t.CreatedByName,
			CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, Archived: !t.ArchivedAt.IsZero()})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) templateByName(r *http.Request) (store.Template, error) {
	name := r.PathValue("name")
	t, err := a.store.TemplateByName(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return t, errNoTemplate(name)
	}
	if err != nil {
		return t, fmt.Errorf("look up template: %w", err)
	}
	return t, nil
}

func (a *API) handleListTemplateVersions(w http.ResponseWriter, r *http.Request, c caller) error {
	t, err := a.templateByName(r)
	if err != nil {
		return err
	}
	list, err := a.store.ListTemplateVersions(r.Context(), t.ID)
	if err != nil {
		return fmt.Errorf("list template versions: %w", err)
	}
	out := make([]client.TemplateVersion, 0, len(list))
	for _, v := range list {
		j, err := versionJSON(t, v)
		if err != nil {
			return err
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) handleTemplateArchive(w http.ResponseWriter, r *http.Request, c caller) error {
	t, err := a.templateByName(r)
	if err != nil {
		return err
	}
	if !mayPush(c.user, t) {
		return newError(http.StatusForbidden, client.CodeForbidden, "only admins and the creator of template %q may download it", t.Name)
	}
	number := t.ActiveVersion
	if s := r.PathValue("version"); s != "active" {
		if number, err = strconv.Atoi(s); err != nil || number <= 0 {
			return badRequest("invalid version %q: want a version number or \"active\"", s)
		}
	}
	v, err := a.store.TemplateVersionByNumber(r.Context(), t.ID, number, true)
	if errors.Is(err, store.ErrNotFound) {
		return newError(http.StatusNotFound, client.CodeNotFound, "template %q has no version %d", t.Name, number)
	}
	if err != nil {
		return fmt.Errorf("load template version: %w", err)
	}
	w.Header().Set("Content-Type", client.TemplateArchiveType)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fmt.Sprintf("%s-v%d.tar", t.Name, v.Version)))
	w.Header().Set("Content-Length", strconv.Itoa(len(v.Archive)))
	w.WriteHeader(http.StatusOK)
	w.Write(v.Archive) // the client went away if this fails
	return nil
}

// versionJSON renders a template version; its variables are stored as
// the JSON of []provision.Variable.
func versionJSON(t store.Template, v store.TemplateVersion) (client.TemplateVersion, error) {
	vars, err := templateVariables(v)
	if err != nil {
		return client.TemplateVersion{}, err
	}
	params, err := templateParameters(v)
	if err != nil {
		return client.TemplateVersion{}, err
	}
	out := client.TemplateVersion{Template: t.Name, Version: v.Version, Active: t.ActiveVersionID == v.ID, Message: v.Message,
		ArchiveHash: v.ArchiveHash, ArchiveSize: v.ArchiveSize, CreatedBy: v.CreatedByName, CreatedAt: v.CreatedAt,
		Variables: make([]client.TemplateVariable, 0, len(vars)), Parameters: params}
	for _, x := range vars {
		tv := client.TemplateVariable{Name: x.Name, Type: x.Type, Description: x.Description,
			Default: x.Default, Required: x.Required, Sensitive: x.Sensitive}
		if x.Sensitive {
			tv.Default = nil // a sensitive default is the template's secret
		}
		out.Variables = append(out.Variables, tv)
	}
	return out, nil
}

func templateVariables(v store.TemplateVersion) ([]provision.Variable, error) {
	var vars []provision.Variable
	if err := json.Unmarshal([]byte(v.Variables), &vars); err != nil {
		return nil, fmt.Errorf("template version %d: stored variables: %w", v.ID, err)
	}
	return vars, nil
}

func templateParameters(v store.TemplateVersion) ([]param.Parameter, error) {
	params := []param.Parameter{}
	if err := json.Unmarshal([]byte(v.Parameters), &params); err != nil {
		return nil, fmt.Errorf("template version %d: stored parameters: %w", v.ID, err)
	}
	return params, nil
}

// pushableTemplate returns the template named in the path if c may change
// it (see mayPush).
func (a *API) pushableTemplate(r *http.Request, c caller) (store.Template, error) {
	t, err := a.templateByName(r)
	if err != nil {
		return t, err
	}
	if !mayPush(c.user, t) {
		return t, newError(http.StatusForbidden, client.CodeForbidden, "only admins and the creator of template %q may change it", t.Name)
	}
	return t, nil
}

func (a *API) handleActivateTemplateVersion(w http.ResponseWriter, r *http.Request, c caller) error {
	t, err := a.pushableTemplate(r, c)
	if err != nil {
		return err
	}
	s := r.PathValue("version")
	number, err := strconv.Atoi(s)
	if err != nil || number <= 0 {
		return badRequest("invalid version %q: want a version number", s)
	}
	v, err := a.store.ActivateTemplateVersion(r.Context(), t.ID, number)
	if errors.Is(err, store.ErrNotFound) {
		return newError(http.StatusNotFound, client.CodeNotFound, "template %q has no version %d (see `devmesh templates versions %s`)", t.Name, number, t.Name)
	}
	if err != nil {
		return fmt.Errorf("activate template version: %w", err)
	}
	a.log.Info("activated template version", "username", c.user.Username, "template", t.Name, "version", number)
	t.ActiveVersionID = v.ID
	out, err := versionJSON(t, v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) handleArchiveTemplate(w http.ResponseWriter, r *http.Request, c caller) error {
	t, err := a.pushableTemplate(r, c)
	if err != nil {
		return err
	}
	if err := templateInUse(t, a.store.ArchiveTemplate(r.Context(), t.ID, true), "archived"); err != nil {
		return err
	}
	a.log.Info("archived template", "username", c.user.Username, "template", t.Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) handleDeleteTemplate(w http.ResponseWriter, r *http.Request, c caller) error {
	t, err := a.pushableTemplate(r, c)
	if err != nil {
		return err
	}
	if err := templateInUse(t, a.store.DeleteTemplate(r.Context(), t.ID), "deleted"); err != nil {
		return err
	}
	a.log.Info("deleted template", "username", c.user.Username, "template", t.Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// templateInUse turns store.ErrInUse into a 409 that says what to do.
func templateInUse(t store.Template, err error, what string) error {
	switch {
	case errors.Is(err, store.ErrInUse):
		return newError(http.StatusConflict, client.CodeTemplateInUse,
			"template %q cannot be %s while workspaces use it: delete them first (admins see every workspace with `devmesh list --all`)", t.Name, what)
	case errors.Is(err, store.ErrNotFound):
		return errNoTemplate(t.Name)
	case err != nil:
		return fmt.Errorf("template %s: %w", what, err)
	}
	return nil
}
