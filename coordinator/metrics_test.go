package coordinator_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"tailscale.com/control/tsp"
	"tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"

	"github.com/devmesh/devmesh/coordinator"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/coordinator/store"
)

// withMetricsListener serves the unauthenticated metrics listener on a
// free loopback port.
func withMetricsListener() coordtest.Option {
	return func(c *coordinator.Config) { c.MetricsListen = "127.0.0.1:0" }
}

// scrape reads /metrics from the metrics listener into series -> value
// ("name{labels}" exactly as exposed).
func scrape(t *testing.T, c *coordtest.Coordinator) map[string]float64 {
	t.Helper()
	code, body, err := tryGet("http://" + c.MetricsAddr().String() + "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("scrape: %d %v", code, err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: bad line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// moved fails unless series grew by at least want between two scrapes.
func moved(t *testing.T, before, after map[string]float64, series string, want float64) {
	t.Helper()
	if _, ok := after[series]; !ok {
		t.Errorf("%s: not exposed", series)
		return
	}
	if d := after[series] - before[series]; d < want {
		t.Errorf("%s: %v -> %v, want +%v", series, before[series], after[series], want)
	}
}

// testNode is a control client with an open map stream.
type testNode struct {
	c   *tsp.Client
	ms  *tsp.MapSession
	key key.NodePrivate
}

// joinNode registers a node with authKey over TS2021 and opens its map
// stream (reading its first map); it returns the refusal, if any.
func joinNode(t *testing.T, url, authKey string) (*testNode, error) {
	t.Helper()
	ctx := context.Background()
	c, err := tsp.NewClient(tsp.ClientOpts{ServerURL: url, MachineKey: key.NewMachine()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	nk := key.NewNode()
	hi := &tailcfg.Hostinfo{Hostname: "metrics-node", OS: "linux"}
	rr, err := c.Register(ctx, tsp.RegisterOpts{NodeKey: nk, AuthKey: authKey, Hostinfo: hi})
	if err != nil {
		return nil, err
	}
	if rr.Error != "" {
		return nil, errors.New(rr.Error)
	}
	ms, err := c.Map(ctx, tsp.MapOpts{NodeKey: nk, Stream: true, Hostinfo: hi})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	if _, err := ms.Next(); err != nil {
		t.Fatal(err)
	}
	return &testNode{c: c, ms: ms, key: nk}, nil
}

// TestMetricsMoveWithEvents scrapes, acts, scrapes: each event moves its
// metric.
func TestMetricsMoveWithEvents(t *testing.T) {
	t.Parallel()
	c := coordtest.Start(t, coordtest.WithoutProvisioning(), withMetricsListener())
	ctx := context.Background()
	admin, _ := setupAdmin(t, c)
	u := c.CreateUser(t, "alice", false)
	authKey := c.AuthKey(t, u, true, false)
	before := scrape(t, c)
	for _, s := range []string{"devmesh_control_nodes", "devmesh_control_map_streams", "devmesh_build_queue_depth"} {
		if before[s] != 0 {
			t.Fatalf("%s = %v on a fresh coordinator", s, before[s])
		}
	}

	// Two nodes join: registrations, full maps, two open streams, and
	// the first node is told about the second (a delta).
	a, err := joinNode(t, c.URL(), authKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := joinNode(t, c.URL(), authKey); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ms.Next(); err != nil { // the delta announcing the second node
		t.Fatal(err)
	}
	// A bad auth key is refused.
	if _, err := joinNode(t, c.URL(), "dmkey-not-a-key"); err == nil {
		t.Fatal("a bogus auth key registered")
	}
	// A build is queued (no provisioner runs it).
	ws, err := c.Store().CreateWorkspace(ctx, store.Workspace{UUID: "w1", OwnerID: u.ID, Name: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store().EnqueueBuild(ctx, store.Build{WorkspaceID: ws.ID, Transition: "start"}); err != nil {
		t.Fatal(err)
	}
	// Logins fail until the rate limit answers 429.
	anon, _ := client.New(c.URL(), "")
	limited := false
	for i := 0; i < 10 && !limited; i++ {
		_, err := anon.Login(ctx, client.LoginRequest{Username: "admin", Password: "wrong password " + strconv.Itoa(i)})
		var ce *client.Error
		if !errors.As(err, &ce) {
			t.Fatalf("bad login: %v", err)
		}
		limited = ce.Status == http.StatusTooManyRequests
	}
	if !limited {
		t.Fatal("ten bad logins were never rate limited")
	}
	if _, err := admin.Me(ctx); err != nil {
		t.Fatal(err)
	}

	// The first node connects to the relay (plain-HTTP DERP on the same
	// port); the relay's counters are bridged into the scrape.
	dc, err := derphttp.NewClient(a.key, c.URL()+"/derp", t.Logf, netmon.NewStatic())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	if err := dc.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	after := scrape(t, c)
	for deadline := time.Now().Add(5 * time.Second); after["devmesh_derp_current_connections"] < 1 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		after = scrape(t, c)
	}
	moved(t, before, after, "devmesh_derp_current_connections", 1)
	moved(t, before, after, "devmesh_derp_accepts_total", 1)
	moved(t, before, after, "devmesh_control_nodes", 2)
	moved(t, before, after, "devmesh_control_nodes_online", 2)
	moved(t, before, after, "devmesh_control_map_streams", 2)
	moved(t, before, after, "devmesh_control_register_duration_seconds_count", 3)
	moved(t, before, after, `devmesh_control_map_messages_sent_total{kind="full"}`, 2)
	moved(t, before, after, `devmesh_control_map_messages_sent_total{kind="delta"}`, 1)
	moved(t, before, after, `devmesh_control_map_bytes_sent_total{kind="delta"}`, 10)
	moved(t, before, after, "devmesh_control_fanout_delay_seconds_count", 1)
	moved(t, before, after, `devmesh_control_refusals_total{reason="invalid_auth_key"}`, 1)
	moved(t, before, after, `devmesh_builds{status="pending"}`, 1)
	moved(t, before, after, "devmesh_build_queue_depth", 1)
	moved(t, before, after, `devmesh_auth_login_failures_total{reason="bad_credentials"}`, 5)
	moved(t, before, after, `devmesh_auth_rate_limited_total{op="login"}`, 1)
	moved(t, before, after, `devmesh_http_requests_total{code="429",route="POST /api/v1/login"}`, 1)
	moved(t, before, after, `devmesh_http_requests_total{code="200",route="GET /api/v1/users/me"}`, 1)
	moved(t, before, after, `devmesh_db_query_duration_seconds_count{op="exec"}`, 1)
	moved(t, before, after, `devmesh_db_query_duration_seconds_count{op="tx"}`, 1)
	for _, s := range []string{"devmesh_derp_bytes_received_total", "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := after[s]; !ok {
			t.Errorf("%s: not exposed", s)
		}
	}
}

// setupAdmin creates the first user (an admin) through the API and
// returns a client with its session, and the session token.
func setupAdmin(t *testing.T, c *coordtest.Coordinator) (*client.Client, string) {
	t.Helper()
	anon, err := client.New(c.URL(), "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := anon.CreateFirstUser(context.Background(), client.LoginRequest{Username: "admin", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(c.URL(), s.Token)
	if err != nil {
		t.Fatal(err)
	}
	return cl, s.Token
}

// getWithToken GETs url with a bearer token ("" for none).
func getWithToken(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsAndPprofAdminOnly: on the main listener /metrics and
// /debug/pprof/ answer only an admin's token; the metrics listener
// serves them without one.
func TestMetricsAndPprofAdminOnly(t *testing.T) {
	t.Parallel()
	c := coordtest.Start(t, coordtest.WithoutProvisioning(), withMetricsListener())
	ctx := context.Background()
	admin, adminTok := setupAdmin(t, c)
	if _, err := admin.CreateUser(ctx, client.CreateUserRequest{Username: "bob", Password: "bob's long password"}); err != nil {
		t.Fatal(err)
	}
	anon, _ := client.New(c.URL(), "")
	bob, err := anon.Login(ctx, client.LoginRequest{Username: "bob", Password: "bob's long password"})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/vars"} {
		if code, _ := getWithToken(t, c.URL()+path, ""); code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d, want 401", path, code)
		}
		if code, _ := getWithToken(t, c.URL()+path, bob.Token); code != http.StatusForbidden {
			t.Errorf("%s with a member's token: %d, want 403", path, code)
		}
		if code, body := getWithToken(t, c.URL()+path, adminTok); code != 200 || body == "" {
			t.Errorf("%s with an admin's token: %d, want 200", path, code)
		}
		if code, _ := getWithToken(t, "http://"+c.MetricsAddr().String()+path, ""); code != 200 {
			t.Errorf("%s on the metrics listener: %d, want 200", path, code)
		}
	}
	if _, body := getWithToken(t, c.URL()+"/metrics", adminTok); !strings.Contains(body, "devmesh_control_nodes ") {
		t.Errorf("admin's /metrics lacks devmesh_control_nodes:\n%.500s", body)
	}
}
