package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/devmesh/devmesh/coordinator/api"
)

// loginView is the login page's data.
type loginView struct {
	Next, Username, Error string
	NotSetUp              bool
	CLI                   string
}

// serveLogin shows the login form, or sends a logged-in browser on.
func (w *Web) serveLogin(rw http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if _, ok := w.session(r); ok {
		http.Redirect(rw, r, next, http.StatusSeeOther)
		return
	}
	w.renderLogin(rw, r, http.StatusOK, loginView{Next: next})
}

func (w *Web) renderLogin(rw http.ResponseWriter, r *http.Request, status int, v loginView) {
	if info, err := w.client("").BuildInfo(r.Context()); err == nil && !info.Setup {
		v.NotSetUp = true
	}
	v.CLI = w.cliLogin()
	w.render(rw, status, "login", nil, v)
}

// cliLogin is the command that logs the CLI in to this coordinator.
func (w *Web) cliLogin() string {
	cmd := "devmesh login " + w.accessURL + " --username YOU"
	if fp := w.fingerprint(); fp != "" {
		cmd += " --fingerprint " + fp
	}
	return cmd
}

// handleLogin checks the form's credentials and sets the session cookie.
func (w *Web) handleLogin(rw http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(rw, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		w.renderLogin(rw, r, http.StatusBadRequest, loginView{Error: "Malformed form."})
		return
	}
	v := loginView{Next: safeNext(r.PostFormValue("next")), Username: r.PostFormValue("username")}
	if _, err := w.api.StartSession(rw, r, v.Username, r.PostFormValue("password")); err != nil {
		v.Error = err.Error()
		w.renderLogin(rw, r, http.StatusUnauthorized, v)
		return
	}
	http.Redirect(rw, r, v.Next, http.StatusSeeOther)
}

// handleLogout revokes the session (the form carries the CSRF token) and
// goes back to the login page.
func (w *Web) handleLogout(rw http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(rw, r.Body, 16<<10)
	if err := w.api.EndSession(rw, r); err != nil {
		msg, status := "Logout refused: the form carried no valid CSRF token. Reload the page and try again.", http.StatusForbidden
		if !errors.Is(err, api.ErrCSRF) {
			w.log.Error("logout", "err", err)
			msg, status = "Logout failed; see the coordinator's log.", http.StatusInternalServerError
		}
		w.render(rw, status, "error", nil, errorView{status, msg})
		return
	}
	http.Redirect(rw, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect on this site: a path, not a
// scheme-relative or absolute URL.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return next
}
