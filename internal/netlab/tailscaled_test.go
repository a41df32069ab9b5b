//go:build linux

package netlab_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/internal/netlab"
	"github.com/devmesh/devmesh/internal/tstool"
)

// TestTailscaledEasyNAT is the table's interop row: the official
// tailscaled (userspace networking) behind an easy NAT reaches a devmesh
// agent behind another easy NAT directly, and OpenSSH through `tailscale
// nc` runs a command and moves 16 MiB.
func TestTailscaledEasyNAT(t *testing.T) {
	netlab.Skip(t)
	t.Parallel()
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("netlab: the tailscaled row needs OpenSSH's ssh (apt-get install openssh-client)")
	}
	tailscaled, tailscale := tstool.Binaries(t)
	w, _ := newWorld(t, behind(netlab.EasyNAT, netlab.EasyNAT), netlab.CoordinatorOptions{})
	agentIP := w.agentAddr(t)
	key := lastLine(w.cli.Must("authkeys", "create"))

	dir := t.TempDir()
	sock := filepath.Join(dir, "ts.sock")
	d := w.client.Start(dir, "tailscaled", nil, tailscaled, "--tun=userspace-networking",
		"--statedir="+filepath.Join(dir, "state"), "--socket="+sock, "--port=0")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tailscaled made no socket:\n%s", d.Output())
		}
	}
	ts := func(args ...string) (string, error) {
		return w.client.Try(tailscale, append([]string{"--socket=" + sock}, args...)...)
	}
	if out, err := ts("up", "--login-server="+w.coord.URL, "--authkey="+key, "--hostname=tsclient", "--timeout=60s"); err != nil {
		t.Fatalf("tailscale up: %v\n%s", err, out)
	}
	start := time.Now()
	out, err := ts("ping", "-c", "15", agentIP)
	took := time.Since(start)
	t.Logf("tailscale ping:\n%s", out)
	direct := err == nil && strings.Contains(out, "via 198.18.")
	if !direct {
		t.Errorf("tailscale ping %s: %v, want a direct pong", agentIP, err)
	}

	// OpenSSH through tailscale nc: the agent's server needs no keys
	// (the tailnet is the authentication).
	sshArgs := func(remote ...string) *exec.Cmd {
		return exec.CommandContext(t.Context(), sshBin, append([]string{"-F", "/dev/null",
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
			"-o", fmt.Sprintf("ProxyCommand=%s --socket=%s nc %%h %%p", tailscale, sock),
			"dev@" + agentIP, "--"}, remote...)...)
	}
	echo, err := sshArgs("echo", "netlab-ok").CombinedOutput()
	if err != nil || !strings.Contains(string(echo), "netlab-ok") {
		t.Fatalf("ssh through tailscale nc: %v\n%s", err, echo)
	}
	mbps := transferCmd(t, sshArgs("head", "-c", fmt.Sprint(16<<20), "/dev/zero"))
	path := "relayed (DERP)"
	if direct {
		path = "direct"
	}
	netlab.Record(netlab.Row{Topology: "tailscaled (easy NAT) - agent (easy NAT)", Path: path, ToDirect: took, Mbps: mbps})
}

// agentAddr returns the agent's tailnet IPv4 address (from devmesh ping).
func (w *world) agentAddr(t *testing.T) string {
	t.Helper()
	out := w.cli.Must("ping", "ws", "--wait", "-c", "1", "-o", "json")
	var r struct {
		Address string `json:"address"`
	}
	if err := jsonUnmarshal(out, &r); err != nil || r.Address == "" {
		t.Fatalf("devmesh ping -o json: %v\n%s", err, out)
	}
	return r.Address
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// transferCmd runs cmd, which must print 16 MiB, and returns the
// throughput from its first to its last byte in Mbit/s.
func transferCmd(t *testing.T, cmd *exec.Cmd) float64 {
	t.Helper()
	const size = 16 << 20
	var errOut strings.Builder
	cmd.Stderr = &errOut
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	br := bufio.NewReader(stdout)
	if _, err := br.Peek(1); err != nil {
		cmd.Wait()
		t.Fatalf("transfer: no output: %v\n%s", err, errOut.String())
	}
	start := time.Now()
	n, _ := io.Copy(io.Discard, br)
	elapsed := time.Since(start)
	if err := cmd.Wait(); err != nil || n != size {
		t.Fatalf("16 MiB transfer: got %d bytes, %v\n%s", n, err, errOut.String())
	}
	return float64(size*8) / elapsed.Seconds() / 1e6
}
