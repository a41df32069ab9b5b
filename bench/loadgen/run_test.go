package loadgen

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/coordtest"
	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration/testcontrol"
)

func check(t *testing.T, res Result, err error, n, rounds int) {
	t.Helper()
	if err != nil {
		t.Fatalf("run: %v (result %+v)", err, res)
	}
	t.Logf("%+v", res)
	if res.Registered != n || res.MeshIncomplete != 0 {
		t.Errorf("registered %d, mesh incomplete %d; want %d, 0", res.Registered, res.MeshIncomplete, n)
	}
	if res.Deliveries != rounds*(n-1) || res.Missing != 0 {
		t.Errorf("deliveries %d, missing %d; want %d, 0", res.Deliveries, res.Missing, rounds*(n-1))
	}
}

// TestLoadAgainstDevmesh runs a small load against a real coordinator:
// every change must reach every peer.
func TestLoadAgainstDevmesh(t *testing.T) {
	c := coordtest.Start(t, coordtest.WithoutProvisioning())
	u := c.CreateUser(t, "load", false)
	key := c.AuthKey(t, u, true, false)
	const n, rounds = 20, 4
	res, err := Run(context.Background(), Config{URL: c.URL(), AuthKey: key, Nodes: n, Rounds: rounds,
		Concurrency: 8, DeliveryTimeout: 20 * time.Second})
	check(t, res, err, n, rounds)
}

// TestLoadAgainstTestcontrol runs the same load against tailscale's
// test control server, the benchmarks' reference.
func TestLoadAgainstTestcontrol(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ctl := &testcontrol.Server{Logf: t.Logf, DERPMap: &tailcfg.DERPMap{}, AllNodesSameUser: true, ExplicitBaseURL: url}
	srv := &http.Server{Handler: ctl}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	const n, rounds = 5, 2
	res, err := Run(context.Background(), Config{URL: url, Nodes: n, Rounds: rounds, DeliveryTimeout: 5 * time.Second})
	check(t, res, err, n, rounds)
}
