package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HTTP records the requests the coordinator's listener serves, by route
// pattern (the ServeMux pattern that matched, e.g. "GET
// /api/v1/workspaces/{name}": bounded, unlike raw paths) and status.
type HTTP struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	// series caches the resolved children by route and code, so that a
	// request costs a lock-free map load and atomic adds.
	series sync.Map // routeCode -> *httpSeries
}

type routeCode struct {
	route string
	code  int
}

type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newHTTP(reg prometheus.Registerer) *HTTP {
	h := &HTTP{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests served, by route pattern and status code (101: the connection was hijacked: the control and DERP upgrades).",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern (long polls and log follows included: read them by route).",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
	}
	reg.MustRegister(h.requests, h.duration)
	return h
}

// Observe records one served request. A nil *HTTP records nothing.
func (h *HTTP) Observe(route string, code int, d time.Duration) {
	if h == nil {
		return
	}
	k := routeCode{route, code}
	v, ok := h.series.Load(k)
	if !ok {
		v, _ = h.series.LoadOrStore(k, &httpSeries{
			requests: h.requests.WithLabelValues(route, strconv.Itoa(code)),
			duration: h.duration.WithLabelValues(route),
		})
	}
	s := v.(*httpSeries)
	s.requests.Inc()
	if code != 101 { // a hijacked connection's lifetime is no request's
		s.duration.Observe(d.Seconds())
	}
}
