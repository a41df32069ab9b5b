package coordinator

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/devmesh/devmesh/coordinator/api"
	"github.com/devmesh/devmesh/coordinator/webterm"
)

// mountAPI mounts the REST API at /api/v1/ and lets the interactive
// login page check passwords through it (same KDF and rate limits).
func (s *Server) mountAPI(mux *http.ServeMux) error {
	a, err := api.New(api.Options{Store: s.store, Control: s.control, Logger: s.log.With("component", "api"), AccessURL: s.accessURL, Builds: s.builds,
		Quotas: s.cfg.Quotas})
	if err != nil {
		return err
	}
	mux.Handle("/api/v1/", a.Handler())
	s.passwordChecker = a.CheckPassword
	return s.mountTerminal(mux, a)
}

// mountTerminal mounts the browser terminal (coordinator/webterm): its
// API endpoints, assets and the /@OWNER/WS/terminal page.
func (s *Server) mountTerminal(mux *http.ServeMux, a *api.API) error {
	var ice []string
	if u, err := url.Parse(s.accessURL); err == nil && s.relay.STUNPort() > 0 {
		ice = append(ice, "stun:"+net.JoinHostPort(u.Hostname(), strconv.Itoa(s.relay.STUNPort())))
	}
	t, err := webterm.New(context.Background(), webterm.Options{Store: s.store, API: a, ICEServers: ice,
		AdminsReachAll: s.cfg.Policy.AdminsReachAll, Logger: s.log.With("component", "webterm")})
	if err != nil {
		return err
	}
	t.Mount(mux)
	mux.Handle("/", t.Pages(http.NotFoundHandler()))
	return nil
}
