package control

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"tailscale.com/control/tsp"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"

	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/leakcheck"
	"github.com/devmesh/devmesh/internal/secret"
)

// testServer is a control plane on loopback with a real SQLite store, for
// tests that need the package's internals (hooks, the registry).
type testServer struct {
	*Server
	url   string
	store *store.Store
	alice store.User
}

// newTestServer starts a control server. configure (if not nil) adjusts
// the Config; hook (if not nil) runs on the new Server before it serves,
// the place to set test hooks without a data race.
func newTestServer(t *testing.T, configure func(*Config), hook func(*Server)) *testServer {
	t.Helper()
	leakcheck.Check(t)
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "devmesh.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := Config{Store: st, MachineKey: key.NewMachine(), DERPMap: &tailcfg.DERPMap{}}
	if configure != nil {
		configure(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		hook(s)
	}
	if err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	alice, err := st.CreateUser(ctx, "alice", "unusable-hash", store.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	s.SetUser(alice)
	return &testServer{Server: s, url: hs.URL, store: st, alice: alice}
}

// authKey mints a single-use auth key for alice.
func (ts *testServer) authKey(t *testing.T) string {
	t.Helper()
	full, id := secret.New("dmkey")
	_, err := ts.store.CreateAuthKey(context.Background(), store.AuthKey{
		UserID: ts.alice.ID, Prefix: id, SecretHash: secret.Hash(full), ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return full
}

// device is one simulated node speaking the real protocol through tsp.
type device struct {
	c       *tsp.Client
	machine key.MachinePrivate
	node    key.NodePrivate
}

func (ts *testServer) newDevice(t *testing.T) *device {
	t.Helper()
	mk := key.NewMachine()
	c, err := tsp.NewClient(tsp.ClientOpts{ServerURL: ts.url, MachineKey: mk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &device{c: c, machine: mk, node: key.NewNode()}
}

func hostinfo(name string) *tailcfg.Hostinfo { return &tailcfg.Hostinfo{Hostname: name, OS: "linux"} }

// register registers d with an auth key and returns its node ID.
func (ts *testServer) register(t *testing.T, d *device) tailcfg.NodeID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rr, err := d.c.Register(ctx, tsp.RegisterOpts{NodeKey: d.node, AuthKey: ts.authKey(t), Hostinfo: hostinfo("dev")})
	if err != nil || rr.Error != "" || !rr.MachineAuthorized {
		t.Fatalf("register: %+v, %v", rr, err)
	}
	n := ts.reg.NodeByKey(d.node.Public())
	if n == nil {
		t.Fatal("registered node not in the registry")
	}
	return n.ID
}

// openStream opens a map stream and reads the first (full) map.
func openStream(t *testing.T, d *device) *tailcfg.MapResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ms, err := d.c.Map(ctx, tsp.MapOpts{NodeKey: d.node, Stream: true, Hostinfo: hostinfo("dev")})
	if err != nil {
		t.Fatalf("map stream: %v", err)
	}
	defer ms.Close()
	first, err := ms.Next()
	if err != nil {
		t.Fatalf("first map: %v", err)
	}
	return first
}
