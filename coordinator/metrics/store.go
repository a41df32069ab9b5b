package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Database operations (the op label of the query latency).
const (
	DBExec  = "exec"
	DBQuery = "query"
	DBTx    = "tx"
)

// Store records database latency.
type Store struct {
	ops map[string]prometheus.Observer
}

func newStore(reg prometheus.Registerer) *Store {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "db", Name: "query_duration_seconds",
		Help:    "Database latency by operation: exec (a statement), query (until its first row), tx (a whole transaction, begin to commit).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
	}, []string{"op"})
	s := &Store{ops: map[string]prometheus.Observer{}}
	for _, op := range []string{DBExec, DBQuery, DBTx} {
		s.ops[op] = h.WithLabelValues(op)
	}
	reg.MustRegister(h)
	return s
}

// ObserveQuery records one database operation; it has the signature of
// store.Store's query observer.
func (s *Store) ObserveQuery(op string, d time.Duration) {
	if s == nil {
		return
	}
	if o := s.ops[op]; o != nil {
		o.Observe(d.Seconds())
	}
}
