package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Map message kinds (the kind label of the map message metrics).
const (
	MapFull      = "full"
	MapDelta     = "delta"
	MapKeepAlive = "keepalive"
)

// RefusalReasons are the reason label values of
// devmesh_control_refusals_total; Refused maps anything else to "other".
var RefusalReasons = []string{
	"client_too_old", "no_node_key", "machine_mismatch", "invalid_auth_key",
	"auth_key_owner", "node_deleted", "login_link", "too_many_pending_logins",
	"map_unregistered", "relay_unknown_key", "internal", "other",
}

// Control records the control plane's events: registrations, map
// messages and fan-out, refusals.
type Control struct {
	register prometheus.Histogram
	fanout   prometheus.Histogram
	msgs     map[string]prometheus.Counter // by kind, resolved at New
	bytes    map[string]prometheus.Counter
	refusals map[string]prometheus.Counter // by reason, resolved at New
}

func newControl(reg prometheus.Registerer) *Control {
	c := &Control{
		register: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "control", Name: "register_duration_seconds",
			Help:    "Time to answer a node's register request (auth key, key rotation or a known node; interactive logins waiting for the user excluded).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		fanout: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "control", Name: "fanout_delay_seconds",
			Help:    "Time from a change being queued for a node to the delta carrying it written to the node's map stream (includes the batching delay).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		msgs:     map[string]prometheus.Counter{},
		bytes:    map[string]prometheus.Counter{},
		refusals: map[string]prometheus.Counter{},
	}
	msgs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "control", Name: "map_messages_sent_total",
		Help: "Map messages written to nodes' map streams, by kind (full: the first map; delta: changes; keepalive).",
	}, []string{"kind"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "control", Name: "map_bytes_sent_total",
		Help: "Bytes of map messages written (framed, after compression), by kind.",
	}, []string{"kind"})
	refusals := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "control", Name: "refusals_total",
		Help: "Requests the control plane or relay refused, by reason.",
	}, []string{"reason"})
	for _, k := range []string{MapFull, MapDelta, MapKeepAlive} {
		c.msgs[k], c.bytes[k] = msgs.WithLabelValues(k), bytes.WithLabelValues(k)
	}
	for _, r := range RefusalReasons {
		c.refusals[r] = refusals.WithLabelValues(r)
	}
	reg.MustRegister(c.register, c.fanout, msgs, bytes, refusals)
	return c
}

// ObserveRegister records how long a register request took.
func (c *Control) ObserveRegister(d time.Duration) {
	if c == nil {
		return
	}
	c.register.Observe(d.Seconds())
}

// MapSent records a map message of kind (MapFull, MapDelta, MapKeepAlive)
// and its size. For a delta, queued is when its first change was queued
// (zero if unknown): the fan-out delay.
func (c *Control) MapSent(kind string, bytes int, queued time.Time) {
	if c == nil {
		return
	}
	if m := c.msgs[kind]; m != nil {
		m.Inc()
		c.bytes[kind].Add(float64(bytes))
	}
	if !queued.IsZero() {
		c.fanout.Observe(time.Since(queued).Seconds())
	}
}

// Refused records a refusal; reason should be one of RefusalReasons.
func (c *Control) Refused(reason string) {
	if c == nil {
		return
	}
	m := c.refusals[reason]
	if m == nil {
		m = c.refusals["other"]
	}
	m.Inc()
}
