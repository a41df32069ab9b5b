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

func TestMain(m *testing.M) { netlab.Main(m) }

// world is a lab with a coordinator on the internet, a client host and a
// host running the agent of the client's user's external workspace "ws".
type world struct {
	lab    *netlab.Lab
	coord  *netlab.Coordinator
	cli    *netlab.CLI
	agent  *netlab.Agent
	client *netlab.Host
}

// placement puts the client and the agent on hosts of a fresh lab.
type placement func(l *netlab.Lab) (client, agent *netlab.Host, lans []*netlab.LAN)

// behind places client and agent on two LANs behind routers of the given
// kinds.
func behind(client, agent netlab.NAT) placement {
	return func(l *netlab.Lab) (*netlab.Host, *netlab.Host, []*netlab.LAN) {
		a, b := l.LAN("lana", client), l.LAN("lanb", agent)
		return a.Host("client"), b.Host("agent"), []*netlab.LAN{a, b}
	}
}

// sameLAN places both on one LAN behind an easy NAT.
func sameLAN(l *netlab.Lab) (*netlab.Host, *netlab.Host, []*netlab.LAN) {
	a := l.LAN("lana", netlab.EasyNAT)
	return a.Host("client"), a.Host("agent"), []*netlab.LAN{a}
}

// newWorld builds the lab, starts the coordinator, logs in as admin from
// the client's host, creates the workspace and starts its agent.
func newWorld(t *testing.T, place placement, co netlab.CoordinatorOptions) (*world, []*netlab.LAN) {
	t.Helper()
	l := netlab.New(t)
	coordHost := l.PublicHost("coord")
	client, agentHost, lans := place(l)
	if client == nil { // oneHost: everything on the coordinator's host
		client, agentHost = coordHost, coordHost
	}
	w := &world{lab: l, client: client}
	w.coord = netlab.StartCoordinator(t, coordHost, co)
	w.cli = netlab.NewCLI(t, client)
	w.cli.Login(w.coord.URL, "admin", "correct horse battery staple")
	token := w.cli.CreateExternal("ws")
	w.agent = netlab.StartAgent(t, agentHost, w.coord.URL, token)
	return w, lans
}

// pingResult is the part of `devmesh ping -o json` the lab reads.
type pingResult struct {
	Replies []struct {
		Direct     bool   `json:"direct"`
		Endpoint   string `json:"endpoint"`
		DERPRegion string `json:"derp_region"`
		Err        string `json:"error"`
	} `json:"replies"`
	Summary struct {
		Received    int           `json:"received"`
		Direct      bool          `json:"direct"`
		DirectAfter time.Duration `json:"direct_after_ns"`
	} `json:"summary"`
	Hints []string `json:"hints"`
}

// ping runs `devmesh ping ws` (until direct, at most 10 pings) from the
// client.
func (w *world) ping(t *testing.T) pingResult {
	t.Helper()
	out, errOut, err := w.cli.Run(3*time.Minute, nil, "ping", "ws", "--wait", "-o", "json")
	if err != nil {
		t.Fatalf("devmesh ping: %v\n%s%s", err, out, errOut)
	}
	var r pingResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("devmesh ping -o json: %v\n%s", err, out)
	}
	t.Logf("ping: %s", strings.TrimSpace(out))
	return r
}

// sshEcho runs a command over `devmesh ssh` and checks its output.
func (w *world) sshEcho(t *testing.T) {
	t.Helper()
	out, errOut, err := w.cli.Run(90*time.Second, nil, "ssh", "ws", "--", "echo", "netlab-ok")
	if err != nil || strings.TrimSpace(out) != "netlab-ok" {
		t.Fatalf("devmesh ssh ws -- echo: %v\nstdout: %q\nstderr: %s", err, out, errOut)
	}
}

// transfer sends 16 MiB from the agent to the client over `devmesh ssh`
// and returns the throughput from first to last byte in Mbit/s.
func (w *world) transfer(t *testing.T) float64 {
	t.Helper()
	return transferCmd(t, w.cli.Command(t.Context(), "ssh", "ws", "--", "head", "-c", fmt.Sprint(16<<20), "/dev/zero"))
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func pathOf(r pingResult) string {
	if r.Summary.Direct {
		return "direct"
	}
	return "relayed (DERP)"
}

// TestTopologies is the lab's table: for each placement of client and
// agent, the path `devmesh ping` reports, an SSH exec and a 16 MiB
// transfer.
func TestTopologies(t *testing.T) {
	netlab.Skip(t)
	for _, tc := range []struct {
		name   string // client's side - agent's side
		place  placement
		direct bool
	}{
		{"same LAN", sameLAN, true},
		{"easy NAT - easy NAT", behind(netlab.EasyNAT, netlab.EasyNAT), true},
		{"hard NAT - full cone NAT", behind(netlab.HardNAT, netlab.FullConeNAT), true},
		{"full cone NAT - hard NAT", behind(netlab.FullConeNAT, netlab.HardNAT), true},
		// The easy side's conntrack firewall admits only the ip:port it
		// sent to (the hard side's STUN mapping), while the hard side's
		// packets come from a new random port for every destination: no
		// direct path without port prediction, which magicsock does not
		// do. See docs/networking.md.
		{"hard NAT - easy NAT", behind(netlab.HardNAT, netlab.EasyNAT), false},
		{"hard NAT - hard NAT", behind(netlab.HardNAT, netlab.HardNAT), false},
		{"no UDP - easy NAT", behind(netlab.NoUDP, netlab.EasyNAT), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, _ := newWorld(t, tc.place, netlab.CoordinatorOptions{})
			r := w.ping(t)
			if r.Summary.Received == 0 {
				t.Fatalf("no ping reply: %+v", r)
			}
			if r.Summary.Direct != tc.direct {
				t.Errorf("path %s, want direct=%v (hints: %v)", pathOf(r), tc.direct, r.Hints)
			}
			w.sshEcho(t)
			mbps := w.transfer(t)
			netlab.Record(netlab.Row{Topology: tc.name, Path: pathOf(r), ToDirect: r.Summary.DirectAfter, Mbps: mbps})
		})
	}
}
