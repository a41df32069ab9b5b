package coordinator_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
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

// bootstrap creates the first admin through the API, as `devmesh login`
// does on a fresh server, and returns an API client for it.
func bootstrap(t *testing.T, c *coordtest.Coordinator, username, password string) *client.Client {
	t.Helper()
	anon, err := client.New(c.URL(), "")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := anon.CreateFirstUser(context.Background(), client.LoginRequest{Username: username, Password: password})
	if err != nil {
		t.Fatalf("first user: %v", err)
	}
	cl, err := client.New(c.URL(), sess.Token)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestInteropTailscaledInteractiveLogin(t *testing.T) {
	c := coordtest.Start(t)
	const password = "correct horse battery"
	api := bootstrap(t, c, "alice", password)
	ak, err := api.CreateAuthKey(context.Background(), client.CreateAuthKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(context.Background(), node.Options{ControlURL: c.URL(), AuthKey: ak.Key, Hostname: "devbox"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	nIP, _ := n.Addrs()

	d := tstool.StartDaemon(t)
	up := d.Command("up", "--login-server", c.URL(), "--hostname", "laptop", "--timeout", "90s")
	stderr, err := up.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	up.Stdout = up.Stderr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	defer up.Process.Kill()
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if u := authURLRe.FindString(sc.Text()); u != "" {
				urlc <- u
			}
		}
	}()
	var authURL string
	select {
	case authURL = <-urlc:
	case <-time.After(30 * time.Second):
		t.Fatal("tailscale up printed no AuthURL")
	}
	if !strings.HasPrefix(authURL, c.URL()+"/login/node/") {
		t.Fatalf("AuthURL %q is not on the coordinator", authURL)
	}

	// A wrong password is refused and approves nothing.
	res, err := http.PostForm(authURL, url.Values{"username": {"alice"}, "password": {"wrong password"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: status %d, want 401", res.StatusCode)
	}
	if nodes, _ := c.Store().ListNodes(context.Background()); len(nodes) != 1 {
		t.Fatalf("wrong password registered a node (%d nodes)", len(nodes))
	}

	start := time.Now()
	res, err = http.PostForm(authURL, url.Values{"username": {"alice"}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "is now connected") {
		t.Fatalf("login page: %d\n%s", res.StatusCode, body)
	}
	if err := up.Wait(); err != nil {
		t.Fatalf("tailscale up after login: %v", err)
	}
	tsIP := waitRunning(t, d, 30*time.Second)
	t.Logf("interactive login: approval to Running in %v", time.Since(start).Round(time.Millisecond))

	// The node belongs to alice: it reaches her other node.
	if out, err := d.Run("ping", "--timeout", "10s", "--c", "20", nIP.String()); err != nil || !strings.Contains(out, "pong from devbox") {
		t.Fatalf("tailscale ping after interactive login: %v\n%s", err, out)
	}
	nodes, err := api.ListNodes(context.Background(), client.ListNodesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, nd := range nodes {
		for _, a := range nd.Addresses {
			if strings.HasPrefix(a, tsIP+"/") || a == tsIP {
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("interactive node %s not listed among alice's nodes: %+v", tsIP, nodes)
	}
	// The link is single-use.
	res, err = http.PostForm(authURL, url.Values{"username": {"alice"}, "password": {password}})
	if err == nil {
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Fatal("AuthURL approved twice")
		}
	}
}
