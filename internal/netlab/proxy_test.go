//go:build linux

package netlab_test

import (
	"debug/buildinfo"
	"os/exec"
	"strings"
	"testing"

	"github.com/devmesh/devmesh/internal/netlab"
)

// TestWebSocketProxy puts a reverse proxy in front of the coordinator
// that passes WebSocket and the control protocol's upgrade but strips
// `Upgrade: DERP`: the access URL is the proxy's. Control works through
// it; DERP over TLS gets "426 DERP requires connection upgrade", and
// nodes built with WebSocket DERP relay over WebSocket instead. STUN is
// not proxied, so the path stays relayed.
func TestWebSocketProxy(t *testing.T) {
	netlab.Skip(t)
	t.Parallel()
	bin := netlab.Binary(t)
	if !hasTag(t, bin, "ts_debug_websockets") {
		t.Fatalf("%s is built without -tags ts_debug_websockets: its nodes cannot relay over WebSocket (build it with make build)", bin)
	}
	l := netlab.New(t)
	coordHost := l.PublicHost("coord")
	proxyHost := l.PublicHost("proxy")
	a, b := l.LAN("lana", netlab.EasyNAT), l.LAN("lanb", netlab.EasyNAT)
	client, agentHost := a.Host("client"), b.Host("agent")
	proxyURL := "https://" + proxyHost.Addr.String() + ":443"
	coord := netlab.StartCoordinator(t, coordHost, netlab.CoordinatorOptions{TLS: true, AccessURL: proxyURL})
	proxy := netlab.StartProxy(t, proxyHost, "https://"+coordHost.Addr.String()+":8080")
	// What a DERP client without WebSocket gets through the proxy.
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("netlab: the proxy row needs curl (apt-get install curl)")
	}
	code, err := client.Try("curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Upgrade: DERP", "-H", "Connection: Upgrade", proxy.URL+"/derp")
	if err != nil || code != "426" {
		t.Fatalf("DERP upgrade through the proxy: %q, %v; want 426 (the upgrade stripped)", code, err)
	}
	w := &world{lab: l, client: client, coord: coord}
	w.cli = netlab.NewCLI(t, client)
	w.cli.Env = append(w.cli.Env, wsEnv...)
	w.cli.Login(proxy.URL, "admin", "correct horse battery staple")
	token := w.cli.CreateExternal("ws")
	w.agent = netlab.StartAgent(t, agentHost, proxy.URL, token, wsEnv...)
	r := w.ping(t)
	if r.Summary.Received == 0 {
		t.Fatalf("no ping reply through the proxy: %+v\nproxy log:\n%s", r, proxy.Proc.Output())
	}
	if n := strings.Count(proxy.Proc.Output(), "passed Upgrade: websocket for GET /derp"); n < 2 {
		t.Errorf("%d WebSocket DERP connections through the proxy, want one each from the client and the agent:\n%s", n, proxy.Proc.Output())
	}
	w.sshEcho(t)
	mbps := w.transfer(t)
	netlab.Record(netlab.Row{Topology: "proxy in front of the coordinator, no Upgrade: DERP", Path: pathOf(r) + " over WebSocket", Mbps: mbps})
}

// wsEnv makes tailscale.com's DERP client (built with ts_debug_websockets)
// connect over WebSocket.
var wsEnv = []string{"TS_DEBUG_DERP_WS_CLIENT=1"}

// hasTag reports whether the Go binary at path was built with the tag.
func hasTag(t *testing.T, path, tag string) bool {
	t.Helper()
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatalf("build info of %s: %v", path, err)
	}
	for _, s := range bi.Settings {
		if s.Key == "-tags" && strings.Contains(","+s.Value+",", ","+tag+",") {
			return true
		}
	}
	return false
}
