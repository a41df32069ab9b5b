package coordinator

import (
	"net/http"

	"github.com/devmesh/devmesh/coordinator/api"
	"github.com/devmesh/devmesh/coordinator/web"
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
	mux.Handle("/", dash.Handler()) // the dashboard: every path no other route claims
	return nil
}
