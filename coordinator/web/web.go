// Package web serves the browser dashboard at /: server-rendered
// html/template pages and one small plain-JavaScript file, all embedded
// in the binary (no CDN, no build step). Pages read everything through
// the REST API in-process, authenticated by the browser's session cookie
// (see coordinator/api's StartSession), so they show exactly what the
// API lets the user see; the page's JavaScript changes state by calling
// /api/v1 with the session's CSRF token.
package web

import (
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"github.com/devmesh/devmesh/coordinator/api"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configures the dashboard.
type Options struct {
	API    *api.API
	Logger *slog.Logger
	// AccessURL is the coordinator's external URL, shown in the CLI
	// instructions.
	AccessURL string
	// Fingerprint returns the self-signed certificate's fingerprint for
	// the CLI instructions ("" with a real certificate); may be nil.
	Fingerprint func() string
	// Terminal, if set, serves GET /@OWNER/WS/terminal (the browser
	// terminal), with the path values "owner" and "workspace" set. It
	// is dispatched here because a ServeMux pattern for it
	// ("/{owner}/{ws}/terminal") would clash with "/static/term/".
	Terminal http.Handler
}

// Web is the dashboard. Create it with New.
type Web struct {
	api         *api.API
	log         *slog.Logger
	accessURL   string
	fingerprint func() string
	pages       *pages
	mux         *http.ServeMux
	terminal    http.Handler // Options.Terminal, or nil
	inproc      http.Handler // the API's handler, called in-process
}

// New validates o and builds the dashboard. It starts nothing.
func New(o Options) (*Web, error) {
	if o.API == nil {
		return nil, errors.New("web: API is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Fingerprint == nil {
		o.Fingerprint = func() string { return "" }
	}
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	w := &Web{api: o.API, log: o.Logger, accessURL: o.AccessURL, fingerprint: o.Fingerprint,
		pages: p, mux: http.NewServeMux(), inproc: o.API.Handler(), terminal: o.Terminal}
	w.routes()
	return w, nil
}

// Handler serves the dashboard; mount it at "/" (more specific routes,
// such as /api/v1/ and /static/term/, stay with their own handlers).
func (w *Web) Handler() http.Handler { return w.mux }

func (w *Web) routes() {
	m := w.mux
	sub, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", staticHandler(sub))
	m.HandleFunc("GET /login", w.serveLogin)
	m.HandleFunc("POST /login", w.handleLogin)
	m.HandleFunc("POST /logout", w.handleLogout)
	m.HandleFunc("GET /{$}", w.page(w.serveWorkspaces))
	m.HandleFunc("GET /workspaces/new", w.page(w.serveNewWorkspace))
	m.HandleFunc("GET /templates", w.page(w.serveTemplates))
	m.HandleFunc("GET /templates/{name}", w.page(w.serveTemplate))
	m.HandleFunc("GET /tokens", w.page(w.serveTokens))
	m.HandleFunc("GET /admin/users", w.page(w.serveAdminUsers))
	m.HandleFunc("GET /admin/workspaces", w.page(w.serveAdminWorkspaces))
	// /@OWNER/WS: a ServeMux pattern cannot match "@" inside a segment,
	// and "/{owner}/{ws}" would clash with /static/, so the catch-all
	// routes it, and /@OWNER/WS/terminal.
	m.HandleFunc("/", w.serveCatchAll)
}

// serveCatchAll serves /@OWNER/WS, hands /@OWNER/WS/terminal to the
// terminal, and answers anything else with the 404 page.
func (w *Web) serveCatchAll(rw http.ResponseWriter, r *http.Request) {
	if owner, ws, ok := terminalPath(r.URL.Path); ok && w.terminal != nil {
		r.SetPathValue("owner", owner)
		r.SetPathValue("workspace", ws)
		w.terminal.ServeHTTP(rw, r)
		return
	}
	w.page(func(rw http.ResponseWriter, r *http.Request, s *session) error {
		owner, ws, ok := workspacePath(r.URL.Path)
		if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			return errNotFound
		}
		return w.serveWorkspace(rw, r, s, owner, ws)
	})(rw, r)
}

// IsPagePath reports whether path is one of the dashboard's pages or
// assets (which carry cookies and passwords, so a coordinator with an
// https access URL serves them over HTTPS only).
func IsPagePath(path string) bool {
	switch path {
	case "/", "/login", "/logout", "/templates", "/tokens":
		return true
	}
	for _, p := range []string{"/@", "/static/", "/workspaces/", "/templates/", "/admin/"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// workspacePath splits "/@OWNER/WS" (an optional trailing slash allowed).
func workspacePath(p string) (owner, ws string, ok bool) {
	rest, ok := strings.CutPrefix(p, "/@")
	if !ok {
		return "", "", false
	}
	owner, ws, ok = strings.Cut(strings.TrimSuffix(rest, "/"), "/")
	if !ok || owner == "" || ws == "" || strings.Contains(ws, "/") {
		return "", "", false
	}
	return owner, ws, true
}

// terminalPath splits "/@OWNER/WS/terminal".
func terminalPath(p string) (owner, ws string, ok bool) {
	rest, ok := strings.CutSuffix(p, "/terminal")
	if !ok {
		return "", "", false
	}
	return workspacePath(rest)
}
