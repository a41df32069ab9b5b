package coordinator

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/devmesh/devmesh/coordinator/api"
	"github.com/devmesh/devmesh/coordinator/web"
	"github.com/devmesh/devmesh/coordinator/webterm"
)

// mountAPI mounts the REST API at /api/v1/, lets the interactive login
// page check passwords through it (same KDF and rate limits), and mounts
// the dashboard at /.
func (s *Server) mountAPI(mux *http.ServeMux) error {
	a, err := api.New(api.Options{Store: s.store, Control: s.control, Logger: s.log.With("component", "api"), AccessURL: s.accessURL, Builds: s.builds,
		Quotas: s.cfg.Quotas, Metrics: s.metrics.Auth})
	if err != nil {
		return err
	}
	mux.Handle("/api/v1/", a.Handler())
	s.passwordChecker = a.CheckPassword
	s.adminOnly = a.AdminOnly
	dash, err := web.New(web.Options{API: a, Logger: s.log.With("component", "web"), AccessURL: s.accessURL, Fingerprint: s.agentFingerprint})
	if err != nil {
		return err
	}
	// The dashboard: every path no other route claims, the terminal
	// page in front of it.
	return s.mountTerminal(mux, a, dash.Handler())
}

// mountTerminal mounts the browser terminal (coordinator/webterm): its
// API endpoints, assets and the /@OWNER/WS/terminal page, which it
// serves in front of next (the dashboard) at "/".
func (s *Server) mountTerminal(mux *http.ServeMux, a *api.API, next http.Handler) error {
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
	mux.Handle("/", t.Pages(next))
	return nil
}
