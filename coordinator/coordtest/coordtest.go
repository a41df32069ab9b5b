// Package coordtest starts a complete devmesh coordinator on loopback for
// tests: real store, control plane, DERP relay and STUN.
package coordtest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/secret"
)

// Coordinator is a running test coordinator.
type Coordinator struct {
	*coordinator.Server
	cfg coordinator.Config
}

// Option adjusts the coordinator's config.
type Option func(*coordinator.Config)

// WithEphemeralAfter sets how long ephemeral nodes survive disconnected.
func WithEphemeralAfter(d time.Duration) Option {
	return func(c *coordinator.Config) { c.EphemeralAfter = d }
}

// WithMapBatchDelay sets how long a change to nodes' peers waits before
// it is sent: a node that joins is then unknown to its peers that long.
func WithMapBatchDelay(d time.Duration) Option {
	return func(c *coordinator.Config) { c.MapBatchDelay = d }
}

// WithoutSTUN starts the coordinator without its STUN server, as
// `devmesh server --disable-stun` does: nodes' netchecks then get no UDP
// reply.
func WithoutSTUN() Option {
	return func(c *coordinator.Config) { c.STUNListen = "" }
}

// Start runs a coordinator in t's temp dir, closed at the end of the test.
func Start(t testing.TB, opts ...Option) *Coordinator {
	t.Helper()
	stun, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stunAddr := stun.LocalAddr().String()
	stun.Close()
	cfg := coordinator.Config{
		DataDir:         filepath.Join(t.TempDir(), "data"),
		Listen:          "127.0.0.1:0",
		STUNListen:      stunAddr,
		OfflineDebounce: 200 * time.Millisecond,
		Logger:          testLogger(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	c := &Coordinator{cfg: cfg}
	c.start(t)
	// Later restarts keep the same port, as a real deployment would.
	c.cfg.Listen = c.Addr().String()
	c.cfg.AccessURL = c.URL()
	t.Cleanup(func() { c.Close() })
	return c
}

func testLogger() *slog.Logger {
	if os.Getenv("DEVMESH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

func (c *Coordinator) start(t testing.TB) {
	t.Helper()
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if c.Server, err = coordinator.New(c.cfg); err != nil {
			t.Fatalf("coordinator config: %v", err)
		}
		if err = c.Start(context.Background()); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // port still held after a restart
	}
	t.Fatalf("start coordinator: %v", err)
}

// Restart stops the coordinator and starts it again on the same port and
// data directory.
func (c *Coordinator) Restart(t testing.TB) {
	t.Helper()
	c.Close()
	c.start(t)
}

// CreateUser creates a member (or admin) directly in the store.
func (c *Coordinator) CreateUser(t testing.TB, name string, admin bool) store.User {
	t.Helper()
	role := store.RoleMember
	if admin {
		role = store.RoleAdmin
	}
	u, err := c.Store().CreateUser(context.Background(), name, "unusable-hash", role)
	if err != nil {
		t.Fatal(err)
	}
	c.Control().SetUser(u)
	return u
}

// AuthKey mints a tailnet auth key for the user and returns its secret.
func (c *Coordinator) AuthKey(t testing.TB, u store.User, reusable, ephemeral bool) string {
	t.Helper()
	full, id := secret.New("dmkey")
	_, err := c.Store().CreateAuthKey(context.Background(), store.AuthKey{
		UserID: u.ID, Prefix: id, SecretHash: secret.Hash(full),
		Reusable: reusable, Ephemeral: ephemeral, ExpiresAt: time.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(fmt.Errorf("create auth key: %w", err))
	}
	return full
}

// AgentAuthKey mints an auth key whose node will be the given workspace
// agent's, owned by the workspace owner u.
func (c *Coordinator) AgentAuthKey(t testing.TB, u store.User, agentID int64) string {
	t.Helper()
	full, id := secret.New("dmkey")
	_, err := c.Store().CreateAuthKey(context.Background(), store.AuthKey{
		UserID: u.ID, Prefix: id, SecretHash: secret.Hash(full), AgentID: agentID,
		ExpiresAt: time.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(fmt.Errorf("create agent auth key: %w", err))
	}
	return full
}
