package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"tailscale.com/control/tsp"
	"tailscale.com/derp"
	"tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"

	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/leakcheck"
	"github.com/devmesh/devmesh/internal/secret"
)

// client is one simulated node speaking the real protocol through tsp.
type client struct {
	t       *testing.T
	c       *tsp.Client
	machine key.MachinePrivate
	node    key.NodePrivate
}

func newClient(t *testing.T, url string) *client {
	t.Helper()
	mk := key.NewMachine()
	c, err := tsp.NewClient(tsp.ClientOpts{ServerURL: url, MachineKey: mk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, machine: mk, node: key.NewNode()}
}

func (cl *client) register(authKey string, ephemeral bool) *tailcfg.RegisterResponse {
	cl.t.Helper()
	resp, err := cl.tryRegister(authKey, ephemeral)
	if err != nil {
		cl.t.Fatalf("register: %v", err)
	}
	return resp
}

// tryRegister registers; a RegisterResponse.Error comes back as err.
func (cl *client) tryRegister(authKey string, ephemeral bool) (*tailcfg.RegisterResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.c.Register(ctx, tsp.RegisterOpts{NodeKey: cl.node, AuthKey: authKey, Ephemeral: ephemeral,
		Hostinfo: simHostinfo()})
}

func simHostinfo() *tailcfg.Hostinfo { return &tailcfg.Hostinfo{Hostname: "sim", OS: "linux"} }

func (cl *client) stream() *tsp.MapSession {
	cl.t.Helper()
	ms, err := cl.c.Map(context.Background(), tsp.MapOpts{NodeKey: cl.node, Stream: true, Hostinfo: simHostinfo()})
	if err != nil {
		cl.t.Fatalf("map stream: %v", err)
	}
	cl.t.Cleanup(func() { ms.Close() })
	return ms
}

// raw sends an arbitrary body to a Noise route using ms's connection.
func raw(t *testing.T, ms *tsp.MapSession, path string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", "https://unused"+path, bytes.NewReader(body))
	res, err := ms.NoiseRoundTrip(req)
	if err != nil {
		t.Fatalf("noise round trip: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func mintKey(t *testing.T, c *coordtest.Coordinator, k store.AuthKey) string {
	t.Helper()
	full, id := secret.New("dmkey")
	k.Prefix, k.SecretHash = id, secret.Hash(full)
	if _, err := c.Store().CreateAuthKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return full
}

func nodeCount(t *testing.T, c *coordtest.Coordinator) int {
	nodes, err := c.Store().ListNodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(nodes)
}

func TestRegisterRefusals(t *testing.T) {
	leakcheck.Check(t)
	c := coordtest.Start(t)
	alice := c.CreateUser(t, "alice", false)
	used := c.AuthKey(t, alice, false, false)
	first := newClient(t, c.URL())
	if r := first.register(used, false); r.Error != "" || !r.MachineAuthorized {
		t.Fatalf("valid key refused: %+v", r)
	}
	revoked := mintKey(t, c, store.AuthKey{UserID: alice.ID})
	keys, _ := c.Store().ListAuthKeys(context.Background(), alice.ID)
	c.Store().RevokeAuthKey(context.Background(), alice.ID, keys[len(keys)-1].ID)

	tests := []struct {
		name, key, want string
	}{
		{"unknown key", "dmkey_nope", "invalid auth key: auth key not found"},
		{"reused single-use key", used, "invalid auth key: auth key already used"},
		{"expired key", mintKey(t, c, store.AuthKey{UserID: alice.ID, ExpiresAt: time.Now().Add(-time.Second)}), "invalid auth key: auth key expired"},
		{"revoked key", revoked, "invalid auth key: auth key revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := nodeCount(t, c)
			_, err := newClient(t, c.URL()).tryRegister(tt.key, false)
			if err == nil || !strings.HasSuffix(err.Error(), tt.want) {
				t.Fatalf("register error = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), tt.key) {
				t.Fatal("error echoes the secret")
			}
			if nodeCount(t, c) != before {
				t.Fatal("refused registration created a node")
			}
		})
	}

	t.Run("another machine claims a registered node key", func(t *testing.T) {
		thief := newClient(t, c.URL())
		thief.node = first.node
		_, err := thief.tryRegister(c.AuthKey(t, alice, false, false), false)
		if err == nil || !strings.Contains(err.Error(), "registered to another machine") {
			t.Fatalf("register error = %v", err)
		}
		if _, err := thief.c.Map(context.Background(), tsp.MapOpts{NodeKey: first.node, Stream: false}); err == nil || !strings.Contains(err.Error(), "403") {
			t.Fatalf("map with another machine's node key: %v, want 403", err)
		}
	})
	t.Run("unknown node key in map", func(t *testing.T) {
		stranger := newClient(t, c.URL())
		if _, err := stranger.c.Map(context.Background(), tsp.MapOpts{NodeKey: stranger.node}); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("map from unregistered node: %v, want 401", err)
		}
	})
	t.Run("malformed and old requests", func(t *testing.T) {
		ms := first.stream()
		if code, _ := raw(t, ms, "/machine/register", []byte("{not json")); code != http.StatusBadRequest {
			t.Errorf("malformed register: status %d, want 400", code)
		}
		if code, _ := raw(t, ms, "/machine/map", []byte(`{"Version":`)); code != http.StatusBadRequest {
			t.Errorf("malformed map: status %d, want 400", code)
		}
		body, _ := json.Marshal(tailcfg.RegisterRequest{Version: 10, NodeKey: key.NewNode().Public()})
		_, out := raw(t, ms, "/machine/register", body)
		var rr tailcfg.RegisterResponse
		json.Unmarshal(out, &rr)
		if !strings.Contains(rr.Error, "client too old") {
			t.Errorf("old client: Error = %q", rr.Error)
		}
		if code, out := raw(t, ms, "/machine/tka/init/begin", nil); code != http.StatusNotImplemented || len(out) == 0 {
			t.Errorf("unsupported route: status %d body %q, want 501 with a body", code, out)
		}
		if nodeCount(t, c) != 1 {
			t.Fatalf("bad requests created nodes: %d", nodeCount(t, c))
		}
	})
}

// next reads map messages until one satisfies ok, skipping keepalives.
func next(t *testing.T, ms *tsp.MapSession, what string, ok func(*tailcfg.MapResponse) bool) *tailcfg.MapResponse {
	t.Helper()
	got := make(chan *tailcfg.MapResponse, 1)
	errc := make(chan error, 1)
	go func() {
		for {
			r, err := ms.Next()
			if err != nil {
				errc <- err
				return
			}
			if ok(r) {
				got <- r
				return
			}
		}
	}()
	select {
	case r := <-got:
		return r
	case err := <-errc:
		t.Fatalf("waiting for %s: %v", what, err)
	case <-time.After(10 * time.Second):
		ms.Close()
		t.Fatalf("timed out waiting for %s", what)
	}
	return nil
}

func TestStreamDeltas(t *testing.T) {
	leakcheck.Check(t)
	c := coordtest.Start(t)
	alice := c.CreateUser(t, "alice", false)
	bob := c.CreateUser(t, "bob", false)
	a := newClient(t, c.URL())
	a.register(c.AuthKey(t, alice, false, false), false)
	ms := a.stream()
	full, err := ms.Next()
	if err != nil {
		t.Fatal(err)
	}
	if full.Node == nil || !full.Node.MachineAuthorized || full.DERPMap == nil || len(full.Peers) != 0 ||
		full.PacketFilters == nil || full.Debug == nil || !full.Debug.DisableLogTail {
		t.Fatalf("first message incomplete: %+v", full)
	}
	if reg := full.DERPMap.Regions[900]; reg == nil || !strings.HasPrefix(reg.Nodes[0].CertName, "sha256-raw:") {
		t.Fatalf("DERP map does not pin the relay certificate: %+v", full.DERPMap)
	}

	// bob's node joining must not reach alice's stream; alice's second
	// node must, as a whole node plus a filter that admits it.
	bobNode := newClient(t, c.URL())
	bobNode.register(c.AuthKey(t, bob, false, false), false)
	b := newClient(t, c.URL())
	b.register(c.AuthKey(t, alice, false, false), false)
	r := next(t, ms, "PeersChanged with alice's node", func(r *tailcfg.MapResponse) bool { return len(r.PeersChanged) > 0 })
	if len(r.PeersChanged) != 1 || r.PeersChanged[0].Key != b.node.Public() {
		t.Fatalf("PeersChanged = %v, want only alice's second node", r.PeersChanged)
	}
	// Only the new peer's chunk of the filter travels, naming its addresses.
	chunk, ok := r.PacketFilters[fmt.Sprintf("n%d", r.PeersChanged[0].ID)]
	if len(r.PacketFilters) != 1 || !ok || len(chunk) != 1 ||
		!slices.Equal(chunk[0].SrcIPs, []string{r.PeersChanged[0].Addresses[0].Addr().String(), r.PeersChanged[0].Addresses[1].Addr().String()}) {
		t.Fatalf("filter not updated with the new peer's chunk alone: %+v", r.PacketFilters)
	}
	if r.Node != nil || r.DERPMap != nil {
		t.Fatal("delta resent unchanged self node or DERP map")
	}

	// A lite update (new disco key) becomes a small patch, and must not
	// break b's stream.
	bms := b.stream()
	if _, err := bms.Next(); err != nil {
		t.Fatal(err)
	}
	disco := key.NewDisco().Public()
	if err := b.c.SendMapUpdate(context.Background(), tsp.SendMapUpdateOpts{NodeKey: b.node, DiscoKey: disco,
		Hostinfo: &tailcfg.Hostinfo{Hostname: "sim", OS: "linux", NetInfo: &tailcfg.NetInfo{PreferredDERP: 900}}}); err != nil {
		t.Fatal(err)
	}
	r = next(t, ms, "disco patch", func(r *tailcfg.MapResponse) bool {
		for _, p := range r.PeersChangedPatch {
			if p.DiscoKey != nil {
				return true
			}
		}
		return false
	})
	for _, p := range r.PeersChangedPatch {
		if p.DiscoKey != nil && (*p.DiscoKey != disco || p.DERPRegion != 900) {
			t.Fatalf("patch = %+v, want disco %v and DERP 900", p, disco)
		}
	}
	if len(r.PeersChanged) != 0 {
		t.Fatalf("disco change sent whole nodes: %v", r.PeersChanged)
	}

	// b's stream closing makes it offline for a, via patch.
	bms.Close()
	next(t, ms, "offline patch", func(r *tailcfg.MapResponse) bool {
		for _, p := range r.PeersChangedPatch {
			if p.Online != nil && !*p.Online {
				return true
			}
		}
		return false
	})
}

func TestLogoutAndEphemeral(t *testing.T) {
	leakcheck.Check(t)
	c := coordtest.Start(t, coordtest.WithEphemeralAfter(300*time.Millisecond))
	alice := c.CreateUser(t, "alice", false)

	eph := newClient(t, c.URL())
	eph.register(c.AuthKey(t, alice, false, true), true)
	if nodeCount(t, c) != 1 {
		t.Fatal("ephemeral node not registered")
	}
	ms := eph.stream()
	ms.Next()
	time.Sleep(600 * time.Millisecond)
	if nodeCount(t, c) != 1 {
		t.Fatal("ephemeral node deleted while its stream was open")
	}
	ms.Close()
	deadline := time.Now().Add(5 * time.Second)
	for nodeCount(t, c) != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if nodeCount(t, c) != 0 {
		t.Fatal("ephemeral node survived its last stream")
	}

	dev := newClient(t, c.URL())
	dev.register(c.AuthKey(t, alice, false, false), false)
	if !c.Control().AdmitNodeKey(dev.node.Public()) {
		t.Fatal("relay does not admit a registered node")
	}
	ms = dev.stream()
	body, _ := json.Marshal(tailcfg.RegisterRequest{Version: tailcfg.CurrentCapabilityVersion, NodeKey: dev.node.Public(), Expiry: time.Unix(123, 0)})
	if code, out := raw(t, ms, "/machine/register", body); code != 200 {
		t.Fatalf("logout: %d %s", code, out)
	}
	if c.Control().AdmitNodeKey(dev.node.Public()) {
		t.Fatal("relay admits a logged-out node")
	}
	nodes, _ := c.Store().ListNodes(context.Background())
	if len(nodes) != 1 || nodes[0].KeyExpiry.Before(time.Now().Add(-time.Minute)) {
		t.Fatalf("logout expiry not clamped to now: %+v", nodes)
	}
	if r := dev.register("", false); !r.NodeKeyExpired {
		t.Fatalf("re-register with expired key: %+v, want NodeKeyExpired", r)
	}
}

func TestRelayAdmitsOnlyRegisteredNodes(t *testing.T) {
	leakcheck.Check(t)
	c := coordtest.Start(t)
	alice := c.CreateUser(t, "alice", false)
	reg1, reg2 := newClient(t, c.URL()), newClient(t, c.URL())
	reg1.register(c.AuthKey(t, alice, false, false), false)
	reg2.register(c.AuthKey(t, alice, false, false), false)
	region := c.DERPMap().Regions[900]
	dial := func(k key.NodePrivate) *derphttp.Client {
		dc := derphttp.NewRegionClient(k, t.Logf, netmon.NewStatic(), func() *tailcfg.DERPRegion { return region })
		t.Cleanup(func() { dc.Close() })
		return dc
	}
	sender, receiver := dial(reg1.node), dial(reg2.node)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := receiver.Connect(ctx); err != nil {
		t.Fatalf("registered node cannot connect to the relay: %v", err)
	}
	got := make(chan error, 1)
	go func() {
		for {
			m, err := receiver.Recv()
			if err != nil {
				got <- err
				return
			}
			if p, ok := m.(derp.ReceivedPacket); ok && string(p.Data) == "hello" {
				got <- nil
				return
			}
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := sender.Send(reg2.node.Public(), []byte("hello")); err != nil {
			t.Fatalf("send: %v", err)
		}
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("recv: %v", err)
			}
		case <-time.After(200 * time.Millisecond):
			if time.Now().Before(deadline) {
				continue
			}
			t.Fatal("relay did not forward between registered nodes")
		}
		break
	}

	stranger := dial(key.NewNode())
	stranger.Connect(ctx)
	errc := make(chan error, 1)
	go func() {
		for {
			if _, err := stranger.Recv(); err != nil {
				errc <- err
				return
			}
		}
	}()
	select {
	case err := <-errc:
		if errors.Is(err, context.Canceled) {
			t.Fatalf("unexpected: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("relay kept a connection from an unregistered node key")
	}
}

func registerRaw(t *testing.T, ms *tsp.MapSession, req tailcfg.RegisterRequest) tailcfg.RegisterResponse {
	t.Helper()
	req.Version = tailcfg.CurrentCapabilityVersion
	body, _ := json.Marshal(req)
	code, out := raw(t, ms, "/machine/register", body)
	if code != 200 {
		t.Fatalf("register: status %d %s", code, out)
	}
	var rr tailcfg.RegisterResponse
	if err := json.Unmarshal(out, &rr); err != nil {
		t.Fatal(err)
	}
	return rr
}

func TestKeyRotationKeepsIdentity(t *testing.T) {
	leakcheck.Check(t)
	c := coordtest.Start(t)
	alice := c.CreateUser(t, "alice", false)
	bob := c.CreateUser(t, "bob", false)
	dev := newClient(t, c.URL())
	dev.register(c.AuthKey(t, alice, false, false), false)
	before, _ := c.Store().ListNodes(context.Background())
	ms := dev.stream()
	// Log out: the key expires and the relay stops admitting it.
	registerRaw(t, ms, tailcfg.RegisterRequest{NodeKey: dev.node.Public(), Expiry: time.Unix(123, 0)})

	newKey := key.NewNode()
	// Another user's auth key cannot take over alice's node.
	rr := registerRaw(t, ms, tailcfg.RegisterRequest{NodeKey: newKey.Public(), OldNodeKey: dev.node.Public(),
		Auth: &tailcfg.RegisterResponseAuth{AuthKey: c.AuthKey(t, bob, false, false)}})
	if !strings.Contains(rr.Error, "another owner") {
		t.Fatalf("rotation with bob's key: %+v", rr)
	}
	// Without credentials, rotation goes through the login page.
	rr = registerRaw(t, ms, tailcfg.RegisterRequest{NodeKey: newKey.Public(), OldNodeKey: dev.node.Public()})
	if rr.AuthURL == "" || rr.MachineAuthorized {
		t.Fatalf("rotation without credentials: %+v, want an AuthURL", rr)
	}
	rr = registerRaw(t, ms, tailcfg.RegisterRequest{NodeKey: newKey.Public(), OldNodeKey: dev.node.Public(),
		Auth: &tailcfg.RegisterResponseAuth{AuthKey: c.AuthKey(t, alice, false, false)}})
	if rr.Error != "" || !rr.MachineAuthorized {
		t.Fatalf("rotation with alice's key: %+v", rr)
	}
	after, _ := c.Store().ListNodes(context.Background())
	if len(after) != 1 || after[0].ID != before[0].ID || after[0].IPv4 != before[0].IPv4 || after[0].NodeKey != newKey.Public().String() {
		t.Fatalf("rotation changed identity: before %+v after %+v", before, after)
	}
	if !after[0].KeyExpiry.IsZero() && after[0].KeyExpiry.Before(time.Now()) {
		t.Fatal("rotated key is still expired")
	}
	if c.Control().AdmitNodeKey(dev.node.Public()) || !c.Control().AdmitNodeKey(newKey.Public()) {
		t.Fatal("relay admission does not follow the rotation")
	}
}
