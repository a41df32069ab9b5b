package metrics

import (
	"expvar"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	tsmetrics "tailscale.com/metrics"
)

// expvarCollector bridges an expvar map of counters and gauges (as
// tailscale's derpserver exposes) to Prometheus, read on each scrape.
// It is an unchecked collector: the names are known only then.
type expvarCollector struct {
	prefix string // e.g. devmesh_derp_
	v      interface{ Do(func(expvar.KeyValue)) }
}

// expvarGauges are expvar names without the gauge_ prefix that are
// gauges nonetheless.
var expvarGauges = map[string]bool{"average_queue_duration_ms": true}

func (c expvarCollector) Describe(chan<- *prometheus.Desc) {}

func (c expvarCollector) Collect(ch chan<- prometheus.Metric) {
	c.v.Do(func(kv expvar.KeyValue) {
		name, typ := c.nameAndType(kv.Key)
		if lm, ok := kv.Value.(*tsmetrics.LabelMap); ok {
			desc := prometheus.NewDesc(name, "derpserver's "+kv.Key+", by "+lm.Label+".", []string{lm.Label}, nil)
			lm.Do(func(lkv expvar.KeyValue) {
				if v, ok := number(lkv.Value); ok {
					ch <- prometheus.MustNewConstMetric(desc, typ, v, lkv.Key)
				}
			})
			return
		}
		if v, ok := number(kv.Value); ok {
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, "derpserver's "+kv.Key+".", nil, nil), typ, v)
		}
	})
}

// nameAndType follows tailscale's varz convention: a gauge_ prefix marks
// a gauge, anything else counts (counter_ dropped, _total added).
func (c expvarCollector) nameAndType(key string) (string, prometheus.ValueType) {
	switch {
	case strings.HasPrefix(key, "gauge_"):
		return c.prefix + strings.TrimPrefix(key, "gauge_"), prometheus.GaugeValue
	case expvarGauges[key]:
		return c.prefix + key, prometheus.GaugeValue
	}
	return c.prefix + strings.TrimPrefix(key, "counter_") + "_total", prometheus.CounterValue
}

// number returns an expvar's numeric value; strings, histograms and
// nested maps are skipped.
func number(v expvar.Var) (float64, bool) {
	switch v := v.(type) {
	case *expvar.Int:
		return float64(v.Value()), true
	case *expvar.Float:
		return v.Value(), true
	case expvar.Func:
		switch x := v.Value().(type) {
		case int:
			return float64(x), true
		case int64:
			return float64(x), true
		case uint64:
			return float64(x), true
		case float64:
			return x, true
		}
	}
	return 0, false
}

// RegisterExpvar exports v's numeric variables as
// devmesh_<subsystem>_<name>. v must be an expvar map (it has Do);
// anything else is ignored.
func (m *Metrics) RegisterExpvar(subsystem string, v expvar.Var) {
	if d, ok := v.(interface{ Do(func(expvar.KeyValue)) }); ok {
		m.reg.MustRegister(expvarCollector{prefix: namespace + "_" + subsystem + "_", v: d})
	}
}
