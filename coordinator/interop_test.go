package coordinator_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/internal/tstool"
	"github.com/devmesh/devmesh/node"
)

// waitRunning polls `tailscale status --json` until BackendState is
// Running and returns the node's first tailnet IP.
func waitRunning(t *testing.T, d *tstool.Daemon, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		out, err := d.Command("status", "--json").Output()
		if err == nil {
			var st struct {
				BackendState string
				TailscaleIPs []string
			}
			if json.Unmarshal(out, &st) == nil {
				last = st.BackendState
				if st.BackendState == "Running" && len(st.TailscaleIPs) > 0 {
					return st.TailscaleIPs[0]
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("tailscaled did not reach Running within %v (last state %q)", timeout, last)
	return ""
}

func TestInteropTailscaledAuthKey(t *testing.T) {
	c := coordtest.Start(t)
	alice := c.CreateUser(t, "alice", false)
	n, err := node.Start(context.Background(), node.Options{ControlURL: c.URL(), AuthKey: c.AuthKey(t, alice, false, false), Hostname: "devbox"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	nIP, _ := n.Addrs()

	d := tstool.StartDaemon(t)
	keyFile := filepath.Join(d.Dir, "authkey")
	if err := os.WriteFile(keyFile, []byte(c.AuthKey(t, alice, false, false)), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if out, err := d.Run("up", "--login-server", c.URL(), "--auth-key", "file:"+keyFile, "--hostname", "ts-official", "--timeout", "60s"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	tsIP := waitRunning(t, d, 30*time.Second)
	t.Logf("official tailscaled: `tailscale up` to Running in %v, address %s", time.Since(start).Round(time.Millisecond), tsIP)

	out, err := d.Run("ping", "--timeout", "10s", "--c", "20", nIP.String())
	if err != nil {
		t.Fatalf("tailscale ping: %v", err)
	}
	if !strings.Contains(out, "pong from devbox") {
		t.Fatalf("no pong from our node:\n%s", out)
	}
	t.Logf("tailscale ping:\n%s", out)

	// Our node sees the official client as a peer with a direct path.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if res, err := n.WaitDirect(ctx, mustAddr(t, tsIP)); err != nil || !res.Direct {
		t.Fatalf("node -> tailscaled: %+v %v", res, err)
	}
}

var authURLRe = regexp.MustCompile(`https?://\S+/login/node/[0-9a-f]+`)
