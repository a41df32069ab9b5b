package webterm

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/devmesh/devmesh/coordinator/store"
)

//go:embed static
var staticFS embed.FS

// csp is the Content-Security-Policy of the terminal page: no inline
// script, and connections only to this origin (the API, the WebSocket).
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

var pageTmpl = template.Must(template.New("term").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{{.CSRF}}">
<title>{{.Workspace}} terminal · devmesh</title>
<link rel="stylesheet" href="/static/term/vendor/xterm.css">
<link rel="stylesheet" href="/static/term/term.css">
</head>
<body>
<header class="term-bar">
<a href="/{{.OwnerPath}}/{{.Workspace}}">{{.Owner}}/{{.Workspace}}</a>
<span id="term-path" role="status" aria-live="polite">connecting…</span>
<span id="term-rtt" aria-label="round-trip latency"></span>
</header>
<main id="term" data-workspace="{{.APIName}}" data-agent="{{.Agent}}" data-ice="{{.ICE}}" aria-label="terminal"></main>
<script src="/static/term/vendor/xterm.js"></script>
<script src="/static/term/vendor/addon-fit.js"></script>
<script src="/static/term/term.js"></script>
</body>
</html>
`))

type pageData struct {
	CSRF, Owner, OwnerPath, Workspace, APIName, Agent, ICE string
}

var termPathRE = regexp.MustCompile(`^/@([a-z][a-z0-9-]{0,31})/([a-z][a-z0-9-]{0,31})/terminal$`)

// Pages serves GET /@OWNER/WS/terminal and passes every other request
// to next. (A mux pattern cannot express "/@{owner}": the wildcard must
// be a whole segment, and "/{owner}/{ws}/terminal" collides with the
// mux's prefix routes.)
func (s *Server) Pages(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := termPathRE.FindStringSubmatch(r.URL.Path)
		if m == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		u, ok := s.o.API.UserFromRequest(r)
		if !ok {
			// The dashboard's login returns here (same-site paths only).
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if err := s.servePage(w, r, u, m[1], m[2]); err != nil {
			// Not the user's, missing, or no agent: one answer for all.
			s.log.Debug("terminal page", "err", err)
			w.Header().Set("Content-Security-Policy", csp)
			http.Error(w, "404 page not found", http.StatusNotFound)
		}
	})
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request, u store.User, owner, ws string) error {
	agent := r.URL.Query().Get("agent")
	t, err := s.resolve(r.Context(), u, owner+"/"+ws, agent)
	if err != nil {
		return err
	}
	apiName := t.ws.Name
	if t.owner.ID != u.ID {
		apiName = t.owner.Username + "/" + t.ws.Name
	}
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	return pageTmpl.Execute(w, pageData{
		CSRF: csrfToken(s, r), Owner: t.owner.Username, OwnerPath: "@" + t.owner.Username, Workspace: t.ws.Name,
		APIName: apiName, Agent: t.agent.Name, ICE: strings.Join(s.o.ICEServers, " "),
	})
}

// csrfToken is the page's CSRF token for its POSTs (cookie sessions).
func csrfToken(s *Server, r *http.Request) string { return s.o.API.CSRFToken(r) }

// staticHandler serves the page's assets. Names are not hashed, so
// browsers revalidate them.
func staticHandler() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	fsrv := http.StripPrefix("/static/term/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fsrv.ServeHTTP(w, r)
	})
}
