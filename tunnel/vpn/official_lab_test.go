//go:build linux

package vpn_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/internal/netlab"
	"github.com/devmesh/devmesh/internal/tstool"
)

// tailscaledTUN runs the official tailscaled in TUN mode in the box and
// logs it in with an auth key of the box's user.
func (b *box) tailscaledTUN(t *testing.T, coordURL, hostname string) (ts func(args ...string) (string, error), p *daemonProc) {
	t.Helper()
	tailscaled, tailscale := tstool.Binaries(t)
	key := strings.TrimSpace(b.cli.Must("authkeys", "create"))
	key = key[strings.LastIndex(key, "\n")+1:]
	dir := filepath.Join(b.dir, "ts")
	sock := filepath.Join(dir, "ts.sock")
	p = b.startBG("tailscaled", tailscaled, "--tun=tailscale0", "--statedir="+dir, "--socket="+sock, "--port=0", "--no-logs-no-support")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(p.log)
			t.Fatalf("tailscaled made no socket:\n%s", out)
		}
	}
	ts = func(args ...string) (string, error) {
		return b.try(90*time.Second, tailscale, append([]string{"--socket=" + sock}, args...)...)
	}
	if out, err := ts("up", "--login-server="+coordURL, "--authkey="+key, "--hostname="+hostname, "--timeout=60s"); err != nil {
		t.Fatalf("tailscale up in %s: %v\n%s", b.h.NS, err, out)
	}
	return ts, p
}

// iperf runs iperf3 for 3 s from box from to the server at addr (started
// in box to) and returns the received rate in Gbit/s.
func iperf(t *testing.T, from, to *box, addr string) float64 {
	t.Helper()
	srv := to.startBG("iperf3-server", "iperf3", "-s", "-1", "-p", "5201")
	defer srv.stop()
	var out string
	var err error
	for range 50 { // until the server listens
		if out, err = from.try(30*time.Second, "iperf3", "-c", addr, "-p", "5201", "-t", "3", "-J"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("iperf3 to %s: %v\n%s", addr, err, out)
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("iperf3 output: %v\n%s", err, out)
	}
	return res.End.SumReceived.BitsPerSecond / 1e9
}

// TestVPNOfficialClients is issue 12's tests 3 and 4. The official
// tailscaled in TUN mode, logged in to the same coordinator, resolves
// alice's workspace by its MagicDNS names and reaches it; bob's official
// client can do neither. Then iperf3 between two of alice's devmesh
// daemons in VPN mode against two official tailscaled in TUN mode, on the
// same namespaces and coordinator.
func TestVPNOfficialClients(t *testing.T) {
	t.Parallel()
	netlab.Skip(t)
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Fatal("the VPN throughput test needs iperf3 (apt-get install iperf3)")
	}
	w := newVPNWorld(t)
	w.wsHost.Start(t.TempDir(), "http", nil, "python3", "-m", "http.server", "8080", "--bind", "127.0.0.1")
	a := w.alice
	a2cli := netlab.NewCLI(t, w.lab.PublicHost("alice2"))
	a2cli.Login(w.coord.URL, "alice", password)
	a2 := newBox(t, a2cli.Host, a2cli)

	// Test 3: official clients.
	tsA, pA := a.tailscaledTUN(t, w.coord.URL, "tsa")
	agentIP := ""
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, err := a.try(5*time.Second, "getent", "ahostsv4", "dev.devmesh.internal")
		if err == nil {
			agentIP = strings.Fields(out)[0]
			break
		}
		if time.Now().After(deadline) {
			st, _ := tsA("status")
			t.Fatalf("tailscaled does not resolve dev.devmesh.internal: %v %s\n%s\nresolv.conf:\n%s", err, out, st, a.must("cat", "/etc/resolv.conf"))
		}
	}
	if out, err := a.try(30*time.Second, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20", "http://dev.alice.devmesh.internal:8080/"); err != nil || out != "200" {
		t.Fatalf("curl through tailscaled: %v %s", err, out)
	}
	tsB, pB := w.bob.tailscaledTUN(t, w.coord.URL, "tsbob")
	if out, err := w.bob.try(10*time.Second, "getent", "hosts", "dev.alice.devmesh.internal"); err == nil {
		t.Fatalf("bob's tailscaled resolves alice's workspace: %s", out)
	}
	if out, err := w.bob.try(10*time.Second, "curl", "-sS", "--max-time", "3", "http://"+agentIP+":8080/"); err == nil {
		t.Fatalf("bob's tailscaled reached alice's workspace: %s", out)
	}
	pB.stop()
	_ = tsB

	// Test 4: throughput, official pair first.
	tsA2, pA2 := a2.tailscaledTUN(t, w.coord.URL, "tsa2")
	ip, err := tsA2("ip", "-4")
	if err != nil {
		t.Fatal(err)
	}
	official := iperf(t, a, a2, strings.TrimSpace(ip))
	pA.stop()
	pA2.stop()

	// The devmesh pair, in the same namespaces.
	a.startDaemon()
	a2.startDaemon()
	a.must(netlab.Binary(t), "vpn", "up")
	a2.must(netlab.Binary(t), "vpn", "up")
	ours := iperf(t, a, a2, a2.status().Addrs[0].String())
	ratio := ours / official
	t.Logf("iperf3 over VPN mode: devmesh %.2f Gbit/s, official tailscaled %.2f Gbit/s: %.2fx", ours, official, ratio)
	netlab.Record(netlab.Row{Topology: "VPN mode (TUN) iperf3, public-public", Path: fmt.Sprintf("devmesh/official %.2fx", ratio), Mbps: ours * 1000})
	// Both run the same tailscale data path over a TUN, so the ratio
	// hovers around 1.0x (0.95-1.1x in CI) and one 3 s sample on two
	// loaded cores cannot tell 0.95x from 1.0x. Far below means another
	// path (relayed, or netstack instead of the TUN): that fails.
	if ratio < minVPNRatio {
		t.Errorf("devmesh VPN throughput %.2f Gbit/s is %.2fx the official client's %.2f Gbit/s, want at least %.1fx: not the same data path?", ours, ratio, official, minVPNRatio)
	}
}

// minVPNRatio is the least devmesh/official VPN throughput ratio that
// still means the same data path.
const minVPNRatio = 0.7
