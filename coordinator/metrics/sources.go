package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Tailnet is the control plane's state at a scrape.
type Tailnet struct {
	Nodes        int // registered nodes
	Online       int // nodes with an open map stream (after the offline debounce)
	Streams      int // open map streams
	AgentsOnline int // online nodes of workspace agents
}

// sourceTimeout bounds a scrape-time read that goes to the database.
const sourceTimeout = 2 * time.Second

var (
	descNodes   = prometheus.NewDesc(namespace+"_control_nodes", "Registered tailnet nodes.", nil, nil)
	descOnline  = prometheus.NewDesc(namespace+"_control_nodes_online", "Nodes online (with an open map stream).", nil, nil)
	descStreams = prometheus.NewDesc(namespace+"_control_map_streams", "Open map streams.", nil, nil)
	descAgents  = prometheus.NewDesc(namespace+"_agents_connected", "Workspace agents connected to the tailnet (their node online).", nil, nil)
	descBuilds  = prometheus.NewDesc(namespace+"_builds", "Workspace builds in the database, by status.", []string{"status"}, nil)
	descQueue   = prometheus.NewDesc(namespace+"_build_queue_depth", "Builds waiting for a provisioner (status pending).", nil, nil)
)

// tailnetCollector reads a Tailnet on each scrape.
type tailnetCollector func() Tailnet

func (f tailnetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descNodes
	ch <- descOnline
	ch <- descStreams
	ch <- descAgents
}

func (f tailnetCollector) Collect(ch chan<- prometheus.Metric) {
	t := f()
	ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(t.Nodes))
	ch <- prometheus.MustNewConstMetric(descOnline, prometheus.GaugeValue, float64(t.Online))
	ch <- prometheus.MustNewConstMetric(descStreams, prometheus.GaugeValue, float64(t.Streams))
	ch <- prometheus.MustNewConstMetric(descAgents, prometheus.GaugeValue, float64(t.AgentsOnline))
}

// RegisterTailnet reads the control plane's state through f on each
// scrape (f is the owner's method, which takes its own lock once).
func (m *Metrics) RegisterTailnet(f func() Tailnet) {
	m.reg.MustRegister(tailnetCollector(f))
}

// buildsCollector counts builds by status on each scrape.
type buildsCollector struct {
	count    func(context.Context) (map[string]int, error)
	statuses []string
	pending  string
}

func (c buildsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBuilds
	ch <- descQueue
}

func (c buildsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), sourceTimeout)
	defer cancel()
	counts, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descBuilds, err)
		return
	}
	for _, s := range c.statuses {
		ch <- prometheus.MustNewConstMetric(descBuilds, prometheus.GaugeValue, float64(counts[s]), s)
	}
	ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(counts[c.pending]))
}

// RegisterBuilds counts builds by status through count on each scrape;
// every status in statuses is reported (0 when absent), and the count of
// pending is also the queue depth.
func (m *Metrics) RegisterBuilds(count func(context.Context) (map[string]int, error), statuses []string, pending string) {
	m.reg.MustRegister(buildsCollector{count: count, statuses: statuses, pending: pending})
}
