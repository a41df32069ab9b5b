package control

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"tailscale.com/control/tsp"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// startLogin sends a register without credentials for a fresh node key on
// d's machine and returns the AuthURL, or the refusal as an error.
func startLogin(t *testing.T, d *device) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rr, err := d.c.Register(ctx, tsp.RegisterOpts{NodeKey: d.node, Hostinfo: hostinfo("laptop")})
	if err != nil {
		return "", err
	}
	if rr.AuthURL == "" {
		t.Fatalf("register without credentials: %+v, want an AuthURL", rr)
	}
	return rr.AuthURL, nil
}

// withNodeKey is d's machine with another node key.
func withNodeKey(d *device) *device { return &device{c: d.c, machine: d.machine, node: key.NewNode()} }

var loopback = netip.MustParseAddr("127.0.0.1")

func limits(l PendingLoginLimits) func(*Config) {
	return func(c *Config) { c.PendingLogins = l }
}

func wantRefusal(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("over the cap: %v, want the refusal %q", err, want)
	}
}

func TestPendingLoginsPerMachineCap(t *testing.T) {
	ts := newTestServer(t, limits(PendingLoginLimits{PerMachine: 2}), nil)
	dev := ts.newDevice(t)
	first, err := startLogin(t, dev)
	if err != nil {
		t.Fatal(err)
	}
	// Asking again for the same node key reuses the pending login.
	again, err := startLogin(t, dev)
	if err != nil || again != first {
		t.Fatalf("second login for the same node key: %q %v, want %q", again, err, first)
	}
	if _, err := startLogin(t, withNodeKey(dev)); err != nil {
		t.Fatal(err)
	}
	_, err = startLogin(t, withNodeKey(dev))
	wantRefusal(t, err, refusePerMachine)
	if n := ts.pending.count(); n != 2 {
		t.Fatalf("%d logins pending, want 2", n)
	}
	// Another machine from the same address is not affected.
	if _, err := startLogin(t, ts.newDevice(t)); err != nil {
		t.Fatal(err)
	}
}

func TestPendingLoginsPerSourceCap(t *testing.T) {
	ts := newTestServer(t, limits(PendingLoginLimits{PerSource: 2}), nil)
	for range 2 {
		if _, err := startLogin(t, ts.newDevice(t)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := startLogin(t, ts.newDevice(t))
	wantRefusal(t, err, refusePerSource)
}

func TestPendingLoginsTotalCap(t *testing.T) {
	ts := newTestServer(t, limits(PendingLoginLimits{PerSource: 100, Total: 3}), nil)
	for range 3 {
		if _, err := startLogin(t, ts.newDevice(t)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := startLogin(t, ts.newDevice(t))
	wantRefusal(t, err, refuseTotal)
	// A node with credentials still registers.
	ts.register(t, ts.newDevice(t))
}

func TestPendingLoginsExpire(t *testing.T) {
	ts := newTestServer(t, limits(PendingLoginLimits{PerMachine: 1, TTL: 200 * time.Millisecond}), nil)
	dev := ts.newDevice(t)
	link, err := startLogin(t, dev)
	if err != nil {
		t.Fatal(err)
	}
	_, err = startLogin(t, withNodeKey(dev))
	wantRefusal(t, err, refusePerMachine)
	deadline := time.Now().Add(5 * time.Second)
	for ts.pending.count() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("pending login did not expire")
		}
		time.Sleep(20 * time.Millisecond)
	}
	res, err := http.Get(ts.url + link) // BaseURL is empty in tests
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("expired login page: %d, want 404", res.StatusCode)
	}
	if _, err := startLogin(t, withNodeKey(dev)); err != nil {
		t.Fatalf("login after the earlier one expired: %v", err)
	}
}

// A waiting Followup request learns that its link expired instead of
// hanging until the client gives up.
func TestFollowupEndsWhenLinkExpires(t *testing.T) {
	ts := newTestServer(t, limits(PendingLoginLimits{TTL: 200 * time.Millisecond}), nil)
	mk := key.NewMachine().Public()
	nk := key.NewNode().Public()
	req := tailcfg.RegisterRequest{Version: tailcfg.CurrentCapabilityVersion, NodeKey: nk, Hostinfo: hostinfo("laptop")}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rr, err := ts.Server.register(ctx, mk, loopback, &req)
	if err != nil || rr.AuthURL == "" {
		t.Fatalf("start login: %+v %v", rr, err)
	}
	req.Followup = rr.AuthURL
	rr, err = ts.Server.register(ctx, mk, loopback, &req)
	if err != nil || !strings.Contains(rr.Error, "expired") {
		t.Fatalf("followup on an expiring link: %+v %v, want an expiry refusal", rr, err)
	}
}

func TestRegisterBodyLimit(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	post := func(hostname string) *httptest.ResponseRecorder {
		body, _ := json.Marshal(tailcfg.RegisterRequest{Version: tailcfg.CurrentCapabilityVersion,
			NodeKey: key.NewNode().Public(), Hostinfo: hostinfo(hostname)})
		w := httptest.NewRecorder()
		ts.serveRegister(w, httptest.NewRequest("POST", "/machine/register", bytes.NewReader(body)), key.NewMachine().Public())
		return w
	}
	if w := post(strings.Repeat("a", 8<<10)); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "AuthURL") {
		t.Fatalf("8 KiB register request: %d %s", w.Code, w.Body)
	}
	if w := post(strings.Repeat("a", maxRegisterBody)); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("register request over %d bytes: %d %s, want 413", maxRegisterBody, w.Code, w.Body)
	}
	if n := ts.pending.count(); n != 1 {
		t.Fatalf("%d logins pending, want 1 (the oversized request must change nothing)", n)
	}
	// Only a bounded hostname is kept for the login page.
	ts.pending.mu.Lock()
	defer ts.pending.mu.Unlock()
	for _, p := range ts.pending.byID {
		if len(p.hostname) > maxPendingHostname {
			t.Fatalf("pending login keeps a %d-byte hostname", len(p.hostname))
		}
	}
}
