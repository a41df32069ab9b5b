// Package metrics defines the coordinator's Prometheus metrics and serves
// them in the text exposition format. Each Metrics has its own registry
// (never the process-global default), so two coordinators in one process
// (tests) do not share counters.
//
// Event metrics (requests, deltas, refusals, latencies) are recorded by
// their owners through the small nil-safe types here (Control, Auth,
// HTTP, Store): a nil *Control records nothing, so packages work without
// metrics. Recording is atomic adds on pre-resolved series, with no lock
// of our own. State metrics (nodes, streams, builds, DERP clients) are
// read on scrape from their owners through the Source funcs given to
// Register*, never copied into a second place.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every devmesh metric.
const namespace = "devmesh"

// Metrics is one coordinator's metrics: its registry and the recorders
// handed to the packages that own the events.
type Metrics struct {
	reg *prometheus.Registry

	HTTP    *HTTP
	Control *Control
	Auth    *Auth
	Store   *Store
}

// New returns a registry with the Go runtime and process collectors and
// every devmesh event metric registered.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return &Metrics{
		reg:     reg,
		HTTP:    newHTTP(reg),
		Control: newControl(reg),
		Auth:    newAuth(reg),
		Store:   newStore(reg),
	}
}

// Registry returns the registry (for tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format (or
// OpenMetrics when the scraper asks for it). A collector that fails is
// reported in the scrape's output, the rest still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}
