package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"html/template"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// startInteractive answers a register without credentials with an AuthURL.
func (s *Server) startInteractive(mk key.MachinePublic, src netip.Addr, req *tailcfg.RegisterRequest, old *Node) tailcfg.RegisterResponse {
	var b [16]byte
	rand.Read(b[:])
	p := &pendingAuth{id: hex.EncodeToString(b[:]), machineKey: mk, source: src, nodeKey: req.NodeKey,
		ephemeral: req.Ephemeral, version: req.Version, old: old}
	if hi := req.Hostinfo; hi != nil {
		p.hostname, p.os = truncate(hi.Hostname, maxPendingHostname), truncate(hi.OS, 32)
	}
	p, refusal := s.pending.add(p)
	if refusal != "" {
		return refuse("%s", refusal)
	}
	return tailcfg.RegisterResponse{AuthURL: strings.TrimRight(s.cfg.BaseURL, "/") + "/login/node/" + p.id}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// awaitInteractive blocks a Followup register until the user logged in on
// the AuthURL, the link expired or the request ends.
func (s *Server) awaitInteractive(ctx context.Context, mk key.MachinePublic, req *tailcfg.RegisterRequest) (tailcfg.RegisterResponse, error) {
	u, err := url.Parse(req.Followup)
	if err != nil {
		return refuse("malformed followup URL"), nil
	}
	p := s.pending.get(strings.TrimPrefix(u.Path, "/login/node/"))
	if p == nil {
		return refuse("login link expired or unknown; run the login again"), nil
	}
	if p.machineKey != mk || p.nodeKey != req.NodeKey {
		return refuse("login link belongs to another node"), nil
	}
	select {
	case <-ctx.Done():
		return tailcfg.RegisterResponse{}, ctx.Err()
	case <-p.done:
	case <-p.gone:
		select {
		case <-p.done: // approved just before it was forgotten
		default:
			return refuse("login link expired; run the login again"), nil
		}
	}
	s.pending.remove(p)
	return s.pending.response(p), nil
}

// loginPage shares the dashboard's stylesheet (served at /static/ by
// coordinator/web) and its Content-Security-Policy: no inline style or
// script.
var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>devmesh: add a device</title>
<link rel="stylesheet" href="/static/app.css"></head>
<body><header class="top"><span class="brand">devmesh</span></header>
<main id="main"><section class="narrow" aria-labelledby="h">
<h1 id="h">Add a device to devmesh</h1>
{{if .Done}}<p id="result" role="status">Device <b>{{.Host}}</b> is now connected as <b>{{.User}}</b>. You can close this page.</p>
{{else}}{{if .Host}}<p>Log in to connect <b>{{.Host}}</b> to your tailnet.</p>{{end}}
{{if .Error}}<p id="error" class="error" role="alert">{{.Error}}</p>{{end}}
{{if .Host}}<form method="post" class="stack">
<label for="username">Username</label><input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Connect device</button></form>{{end}}{{end}}
</section></main>
</body></html>`))

// loginCSP is the login page's Content-Security-Policy (the dashboard's).
const loginCSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

type loginView struct {
	Host, User, Error string
	Done              bool
}

// serveLoginPage shows and handles the AuthURL page: the user logs in and
// the waiting node is approved for that user.
func (s *Server) serveLoginPage(w http.ResponseWriter, r *http.Request) {
	p := s.pending.get(r.PathValue("id"))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", loginCSP)
	w.Header().Set("Cache-Control", "no-store")
	if p == nil {
		w.WriteHeader(http.StatusNotFound)
		loginPage.Execute(w, loginView{Error: "This login link has expired or was already used. Run the login on the device again."})
		return
	}
	view := loginView{Host: "this device"}
	if p.hostname != "" {
		view.Host = p.hostname
	}
	switch r.Method {
	case http.MethodGet:
		loginPage.Execute(w, view)
		return
	case http.MethodPost:
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		view.Error = "malformed form"
		loginPage.Execute(w, view)
		return
	}
	user, err := s.cfg.CheckPassword(r.Context(), r, r.PostFormValue("username"), r.PostFormValue("password"))
	if err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		view.Error = err.Error()
		loginPage.Execute(w, view)
		return
	}
	if status, msg := s.completeLogin(r.Context(), p, user.ID); msg != "" {
		w.WriteHeader(status)
		view.Error = msg
		loginPage.Execute(w, view)
		return
	}
	view.Done, view.User = true, user.Username
	loginPage.Execute(w, view)
}

// completeLogin registers (or re-keys) the pending node for userID and
// wakes its Followup request. It returns a status and message on failure.
func (s *Server) completeLogin(ctx context.Context, p *pendingAuth, userID int64) (int, string) {
	if !s.pending.claim(p) {
		return http.StatusConflict, "This device was already approved."
	}
	fail := func(status int, msg string) (int, string) {
		s.pending.unclaim(p)
		return status, msg
	}
	var n *Node
	var err error
	if p.old != nil {
		if p.old.Owner != userID || p.old.AgentID != 0 {
			return fail(http.StatusForbidden, "This device belongs to another user.")
		}
		n, err = s.rotateKey(ctx, p.old, p.nodeKey)
	} else {
		n, err = s.createNode(ctx, p.machineKey, p.registerRequest(), "", userID)
	}
	if errors.Is(err, errNodeGone) {
		return fail(http.StatusGone, "This device was deleted meanwhile. Run the login on the device again.")
	}
	if err != nil {
		s.log.Error("approve node", "err", err)
		return fail(http.StatusInternalServerError, "Could not register the device; see the coordinator's log.")
	}
	s.pending.finish(p, s.authorizedResponse(n))
	return 0, ""
}
