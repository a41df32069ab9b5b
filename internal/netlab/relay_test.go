//go:build linux

package netlab_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/internal/netlab"
)

// speedtest runs `devmesh speedtest ws` in direction dir ("down" or "up")
// for d and returns its throughput in Mbit/s and the path it reports.
func (w *world) speedtest(t *testing.T, dir string, d time.Duration) (float64, string) {
	t.Helper()
	out, errOut, err := w.cli.Run(time.Minute, nil, "speedtest", "ws", "--direction", dir, "-t", d.String(), "-o", "json")
	if err != nil {
		t.Fatalf("devmesh speedtest --direction %s: %v\n%s%s", dir, err, out, errOut)
	}
	var r struct {
		Mbps float64 `json:"mbps"`
		Path string  `json:"path"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("devmesh speedtest -o json: %v\n%s", err, out)
	}
	return r.Mbps, r.Path
}

// TestRelayThroughput compares relayed (DERP) with direct throughput in
// the same run and the same lab: the client behind a hard NAT, the agent
// behind a hard NAT (relayed), then the agent's router turned into a full
// cone (direct). The issue measured 0.07x; the goal is 0.3x.
func TestRelayThroughput(t *testing.T) {
	netlab.Skip(t)
	t.Parallel()
	w, lans := newWorld(t, behind(netlab.HardNAT, netlab.HardNAT), netlab.CoordinatorOptions{})
	if r := w.ping(t); r.Summary.Direct {
		t.Fatalf("hard NATs: path %s, want relayed", pathOf(r))
	}
	const d = 3 * time.Second
	var relayed [2]float64
	for i, dir := range []string{"down", "up"} {
		mbps, path := w.speedtest(t, dir, d)
		if !strings.Contains(path, "DERP") {
			t.Fatalf("speedtest %s over %q, want DERP", dir, path)
		}
		relayed[i] = mbps
		t.Logf("relayed %s: %.0f Mbit/s", dir, mbps)
	}
	lans[1].SetNAT(netlab.FullConeNAT)
	lans[1].FlushConntrack()
	// The agent learns its new (full cone) endpoint at its next netcheck,
	// up to half a minute away: a restart learns it at once.
	w.agent.Proc.Stop()
	w.agent.Start(t)
	if r := w.ping(t); !r.Summary.Direct {
		t.Fatalf("hard NAT - full cone: path %s, want direct", pathOf(r))
	}
	var direct [2]float64
	for i, dir := range []string{"down", "up"} {
		mbps, path := w.speedtest(t, dir, d)
		if !strings.Contains(path, "direct") {
			t.Fatalf("speedtest %s over %q, want direct", dir, path)
		}
		direct[i] = mbps
	}
	note := fmt.Sprintf("speedtest relayed/direct: down %.0f/%.0f Mbit/s = %.2fx, up %.0f/%.0f Mbit/s = %.2fx",
		relayed[0], direct[0], relayed[0]/direct[0], relayed[1], direct[1], relayed[1]/direct[1])
	t.Log(note)
	netlab.Record(netlab.Row{Topology: "relayed vs direct throughput (hard NATs)", Path: "relayed, then direct", Mbps: relayed[0], Note: note})
}
