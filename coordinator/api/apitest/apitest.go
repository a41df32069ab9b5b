// Package apitest runs the coordinator's REST API on loopback for tests:
// a real SQLite store in a temporary directory, a real control.Server and
// an httptest server mounting both, as the coordinator does.
package apitest

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"tailscale.com/tailcfg"
	"tailscale.com/types/key"

	"github.com/devmesh/devmesh/coordinator/api"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/control"
	"github.com/devmesh/devmesh/coordinator/store"
)

// Server is a running API.
type Server struct {
	URL     string
	DBPath  string
	Store   *store.Store
	Control *control.Server
	API     *api.API
}

// New starts a server; it is shut down when the test ends. configure, if
// given, adjusts the API options before construction.
func New(t testing.TB, configure ...func(*api.Options)) *Server {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "devmesh.db")
	st, err := store.OpenSQLite(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	var apiSrv *api.API // set below; the login page calls back into it
	ctl, err := control.New(control.Config{
		Store:      st,
		MachineKey: key.NewMachine(),
		DERPMap: &tailcfg.DERPMap{Regions: map[int]*tailcfg.DERPRegion{
			900: {RegionID: 900, Nodes: []*tailcfg.DERPNode{{Name: "900a", RegionID: 900, HostName: "127.0.0.1"}}},
		}},
		CheckPassword: func(ctx context.Context, r *http.Request, u, pw string) (store.User, error) {
			return apiSrv.CheckPassword(ctx, r, u, pw)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.Load(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })

	opts := api.Options{Store: st, Control: ctl, Logger: slog.New(slog.DiscardHandler)}
	for _, f := range configure {
		f(&opts)
	}
	apiSrv, err = api.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", apiSrv.Handler())
	mux.Handle("/", ctl.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &Server{URL: hs.URL, DBPath: dbPath, Store: st, Control: ctl, API: apiSrv}
}

// Client returns an API client for s authenticated with token ("" for
// none).
func (s *Server) Client(t testing.TB, token string) *client.Client {
	t.Helper()
	c, err := client.New(s.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Bootstrap creates the first user (an admin) through the API and
// returns its session token.
func (s *Server) Bootstrap(t testing.TB, username, password string) string {
	t.Helper()
	sess, err := s.Client(t, "").CreateFirstUser(context.Background(), client.LoginRequest{Username: username, Password: password})
	if err != nil {
		t.Fatalf("bootstrap first user: %v", err)
	}
	return sess.Token
}

// CreateUser creates a user with the admin's token and logs in as it,
// returning the new user's session token.
func (s *Server) CreateUser(t testing.TB, adminToken, username, password, role string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Client(t, adminToken).CreateUser(ctx, client.CreateUserRequest{Username: username, Password: password, Role: role}); err != nil {
		t.Fatalf("create user %s: %v", username, err)
	}
	sess, err := s.Client(t, "").Login(ctx, client.LoginRequest{Username: username, Password: password})
	if err != nil {
		t.Fatalf("log in as %s: %v", username, err)
	}
	return sess.Token
}
