package coordinator

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"tailscale.com/types/key"

	"github.com/devmesh/devmesh/coordinator/metrics"
	"github.com/devmesh/devmesh/coordinator/store"
)

// registerMetrics connects the scrape-time metrics to their owners: the
// control plane's registry, the builds table and the DERP server's
// counters.
func (s *Server) registerMetrics() {
	s.metrics.RegisterTailnet(s.control.Registry().Stats)
	s.metrics.RegisterBuilds(s.store.CountBuildsByStatus, store.BuildStatuses, store.BuildPending)
	s.metrics.RegisterExpvar("derp", s.relay.ExpVar())
}

// admitRelayClient is the relay's admission check: registered, unexpired
// node keys only. Refusals are counted.
func (s *Server) admitRelayClient(k key.NodePublic) bool {
	ok := s.control.AdmitNodeKey(k)
	if !ok {
		s.metrics.Control.Refused("relay_unknown_key")
	}
	return ok
}

// listenMetrics binds MetricsListen, if set, and serves the metrics and
// debug endpoints there without authentication.
func (s *Server) listenMetrics() error {
	if s.cfg.MetricsListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.MetricsListen)
	if err != nil {
		return fmt.Errorf("metrics listen %s: %w", s.cfg.MetricsListen, err)
	}
	s.metricsLn = ln
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.Handle("/debug/", debugHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", s.serveReady)
	s.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: s.cfg.IdleTimeout}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.metricsSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.fail(fmt.Errorf("metrics listener: %w", err))
		}
	}()
	return nil
}

// MetricsAddr returns the metrics listener's address, or nil without
// one.
func (s *Server) MetricsAddr() net.Addr {
	if s.metricsLn == nil {
		return nil
	}
	return s.metricsLn.Addr()
}

// Metrics returns the coordinator's metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// adminDebugPath reports whether p is an admin-only observability path
// of the main listener (it carries an admin's token, so it is HTTPS-only
// like the API).
func adminDebugPath(p string) bool {
	return p == "/metrics" || strings.HasPrefix(p, "/debug/")
}
