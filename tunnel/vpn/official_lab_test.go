//go:build linux

package vpn_test

import (
	"encoding/json"
	"errors"
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
	// iperf3 3.12 with -J exits 0 even when it cannot connect (the
	// reason is in the JSON's "error"), so the JSON decides: a refused
	// connection (the server not listening yet) is tried again.
	var res iperfResult
	var out string
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, err = from.try(30*time.Second, "iperf3", "-c", addr, "-p", "5201", "-t", "3", "-J")
		if err == nil {
			res, err = parseIperf(out)
		}
		if err == nil {
			break
		}
		t.Logf("iperf3 to %s: %v", addr, err)
	}
	if err != nil {
		t.Fatalf("iperf3 to %s: %v\n%s", addr, err, out)
	}
	return res.End.SumReceived.BitsPerSecond / 1e9
}

type iperfResult struct {
	Error string `json:"error"`
	End   struct {
		SumReceived struct {
			Bytes         int64   `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
}

// parseIperf reads an iperf3 -J report; a run that reports an error or
// received nothing is an error.
func parseIperf(out string) (iperfResult, error) {
	var res iperfResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return res, fmt.Errorf("iperf3 output: %w", err)
	}
	if res.Error != "" {
		return res, fmt.Errorf("iperf3: %s", res.Error)
	}
	if res.End.SumReceived.Bytes == 0 {
		return res, errors.New("iperf3 received nothing")
	}
	return res, nil
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

// TestParseIperf: CI once recorded 0.00 Gbit/s because iperf3 -J exited 0
// on a refused connection; such a report must be an error, not a rate.
func TestParseIperf(t *testing.T) {
	refused := `{"start": {"connected": []}, "intervals": [], "end": {}, "error": "unable to connect to server: Connection refused"}`
	if _, err := parseIperf(refused); err == nil || !strings.Contains(err.Error(), "Connection refused") {
		t.Errorf("refused run: err = %v, want the iperf3 error", err)
	}
	if _, err := parseIperf(`{"end": {"sum_received": {"bytes": 0, "bits_per_second": 0}}}`); err == nil {
		t.Error("a run that received nothing is not an error")
	}
	if _, err := parseIperf("iperf3: error"); err == nil {
		t.Error("non-JSON output is not an error")
	}
	res, err := parseIperf(`{"end": {"sum_received": {"bytes": 1000, "bits_per_second": 1.5e9}}}`)
	if err != nil || res.End.SumReceived.BitsPerSecond != 1.5e9 {
		t.Errorf("good run: %+v, %v", res, err)
	}
}
