package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/devmesh/devmesh/coordinator/api"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
)

// CSP is the Content-Security-Policy of every dashboard page: scripts,
// styles and connections only from this origin, no inline script or
// style, no framing.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// SetPageHeaders sets the security headers of an HTML page.
func SetPageHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// pageError is an error with the status and message a page shows.
type pageError struct {
	status int
	msg    string
}

func (e *pageError) Error() string { return e.msg }

var errNotFound = &pageError{http.StatusNotFound, "Not found."}

// session is a logged-in browser: its user, the CSRF token its pages
// carry, and an API client that acts as it.
type session struct {
	User  store.User
	CSRF  string
	API   *client.Client
	Nav   string // the current section, for aria-current
	Title string
}

// IsAdmin is for templates.
func (s *session) IsAdmin() bool { return s.User.IsAdmin() }

// pageFunc serves a page for a logged-in browser.
type pageFunc func(w http.ResponseWriter, r *http.Request, s *session) error

// page adapts a pageFunc: no session sends the browser to the login page,
// an error is shown as an error page.
func (w *Web) page(h pageFunc) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		s, ok := w.session(r)
		if !ok {
			to := "/login"
			if r.URL.Path != "/" {
				to += "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			http.Redirect(rw, r, to, http.StatusSeeOther)
			return
		}
		if err := h(rw, r, s); err != nil {
			w.fail(rw, r, s, err)
		}
	}
}

// session returns the browser's session: only the session cookie counts
// for pages (a bearer token is for scripts).
func (w *Web) session(r *http.Request) (*session, bool) {
	csrf := w.api.CSRFToken(r)
	if csrf == "" {
		return nil, false
	}
	u, ok := w.api.UserFromRequest(r)
	if !ok {
		return nil, false
	}
	ck, _ := r.Cookie(api.SessionCookie)
	return &session{User: u, CSRF: csrf, API: w.client(ck.Value)}, true
}

// fail shows err as an error page: a *pageError or an API error with its
// status and message, anything else as a 500 (logged).
func (w *Web) fail(rw http.ResponseWriter, r *http.Request, s *session, err error) {
	var pe *pageError
	var ae *client.Error
	switch {
	case errors.As(err, &pe):
	case errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusForbidden):
		// A member's view of another user's workspace is a 404, as if it
		// did not exist.
		pe = errNotFound
	case errors.As(err, &ae) && ae.Status < 500:
		pe = &pageError{ae.Status, ae.Message}
	case errors.Is(err, context.Canceled):
		return
	default:
		w.log.Error("dashboard page failed", "path", r.URL.Path, "err", err)
		pe = &pageError{http.StatusInternalServerError, "Something went wrong; see the coordinator's log."}
	}
	s.Title = http.StatusText(pe.status)
	w.render(rw, pe.status, "error", s, errorView{pe.status, pe.msg})
}

// errorView is the error page's data.
type errorView struct {
	Status  int
	Message string
}

// pages holds one template set per page, each with the shared layout.
type pages struct {
	byName map[string]*template.Template
}

var funcs = template.FuncMap{
	"ago":   ago,
	"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"state": workspaceState,
	"wsref": wsRef,
	"wspage": func(ws client.Workspace) string {
		return "/@" + url.PathEscape(ws.Owner) + "/" + url.PathEscape(ws.Name)
	},
	"asset":   assetURL,
	"pathesc": url.PathEscape,
	"deref": func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	},
}

func parsePages() (*pages, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", n, err)
		}
		p.byName[base] = t
	}
	return p, nil
}

// view is what the layout gets: the session (nil on the login page) and
// the page's own data.
type view struct {
	S    *session
	Data any
}

// render writes the page name with data; the page is rendered into a
// buffer first, so a template error becomes a clean 500.
func (w *Web) render(rw http.ResponseWriter, status int, name string, s *session, data any) {
	t := w.pages.byName[name]
	var buf bytes.Buffer
	if t == nil {
		w.log.Error("no such page template", "page", name)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout.html", view{S: s, Data: data}); err != nil {
		w.log.Error("render page", "page", name, "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	SetPageHeaders(rw.Header())
	rw.WriteHeader(status)
	rw.Write(buf.Bytes())
}

// ago is a short relative time ("3m ago"); zero is "never".
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// workspaceState summarises a workspace in a word or two from its latest
// build: running, stopped, starting, failed...
func workspaceState(ws client.Workspace) string {
	b := ws.LatestBuild
	if b == nil {
		return "external"
	}
	verb := map[string][2]string{
		client.TransitionStart:  {"starting", "running"},
		client.TransitionStop:   {"stopping", "stopped"},
		client.TransitionDelete: {"deleting", "deleted"},
	}[b.Transition]
	switch b.Status {
	case client.BuildPending, client.BuildRunning:
		return verb[0]
	case client.BuildSucceeded:
		return verb[1]
	case client.BuildFailed:
		return b.Transition + " failed"
	case client.BuildCanceling, client.BuildCanceled:
		return b.Transition + " " + b.Status
	}
	return b.Status
}

// wsRef is how the API names ws for this session's user: its name for
// the user's own, OWNER/WS (path-escaped as one segment) for an admin
// looking at another user's.
func wsRef(s *session, ws client.Workspace) string {
	if s != nil && ws.Owner == s.User.Username {
		return url.PathEscape(ws.Name)
	}
	return url.PathEscape(ws.Owner + "/" + ws.Name)
}

// staticHandler serves the embedded assets. A request naming the file's
// current hash (?v=, as assetURL writes it) may be cached for a year;
// others must revalidate.
func staticHandler(sub fs.FS) http.Handler {
	fsrv := http.FileServerFS(sub)
	return http.StripPrefix("/static", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.URL.Query().Get("v"); v != "" && v == assetHashes[strings.TrimPrefix(r.URL.Path, "/")] {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fsrv.ServeHTTP(w, r)
	}))
}

// assetHashes maps each embedded asset (path under static/) to the
// first 12 hex digits of its SHA-256.
var assetHashes = func() map[string]string {
	m := map[string]string{}
	fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		m[strings.TrimPrefix(p, "static/")] = hex.EncodeToString(sum[:6])
		return nil
	})
	return m
}()

// assetURL is the versioned URL of an embedded asset.
func assetURL(name string) string {
	return "/static/" + name + "?v=" + assetHashes[name]
}
