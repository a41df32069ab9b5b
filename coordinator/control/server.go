// Package control is the coordinator's tailnet control plane: it speaks the
// Tailscale control protocol (TS2021 Noise, register, map streams) so that
// devmesh nodes and official Tailscale clients join, and it gives each node
// a netmap and packet filter holding only the peers it may reach.
//
// The pure core (index, policy, deltas) is in index.go and delta.go; the
// Registry serializes changes and streams; Server handles HTTP and
// persistence.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"tailscale.com/tailcfg"
	"tailscale.com/types/key"

	"github.com/devmesh/devmesh/coordinator/metrics"
	"github.com/devmesh/devmesh/coordinator/store"
)

// Config configures the control plane.
type Config struct {
	Store  *store.Store
	Logger *slog.Logger
	// MachineKey is the server's persistent Noise key.
	MachineKey key.MachinePrivate
	// BaseURL is the coordinator's external URL, used for AuthURLs.
	BaseURL string
	DERPMap *tailcfg.DERPMap
	// Domain is the MagicDNS base domain (default "devmesh.internal").
	Domain string
	Policy Policy
	// NodeKeyExpiry is how long a user's device key stays valid after
	// login (0: never). Agent nodes never expire.
	NodeKeyExpiry time.Duration
	// EphemeralAfter is how long an ephemeral node may stay disconnected
	// before it is deleted (default 30s).
	EphemeralAfter time.Duration
	// OfflineDebounce delays "offline" after a node's last stream closes.
	OfflineDebounce time.Duration
	// KeepAlive is the map stream keepalive interval (default 50s + jitter).
	KeepAlive time.Duration
	// BatchDelay coalesces bursts of changes per node (default 25ms).
	BatchDelay time.Duration
	// BurstInterval is the least time between two delta messages to a
	// node while changes keep coming (default 100ms; negative: none). An
	// isolated change still waits only BatchDelay. See Pacing.
	BurstInterval time.Duration
	// PendingLogins caps the interactive logins waiting for a user
	// (zero fields: defaults).
	PendingLogins PendingLoginLimits
	// CheckPassword verifies credentials on the interactive login page
	// (the API layer supplies it, with its rate limits).
	CheckPassword func(ctx context.Context, r *http.Request, username, password string) (store.User, error)
	// Metrics records registrations, map messages and refusals (nil:
	// none).
	Metrics *metrics.Control
}

// MinCapVersion is the oldest client capability version accepted.
const MinCapVersion tailcfg.CapabilityVersion = 90

// Server serves the control protocol.
type Server struct {
	cfg Config
	log *slog.Logger
	reg *Registry
	mux *http.ServeMux

	// afterMapLookup, if set (tests only), runs in serveMap after the
	// node was looked up and before the request is applied.
	afterMapLookup func(id tailcfg.NodeID)

	createMu  sync.Mutex // serializes node creation (unique given names)
	persistMu sync.Mutex // orders node state writes to the store

	pending *pendingLogins

	connsMu sync.Mutex // guards conns and closed
	conns   map[io.Closer]struct{}
	closed  bool
}

// New returns a control server. Call Load before serving.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.MachineKey.IsZero() || cfg.DERPMap == nil {
		return nil, errors.New("control: Store, MachineKey and DERPMap are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	if err := ValidateDomain(cfg.Domain); err != nil {
		return nil, fmt.Errorf("control: DNS domain: %w", err)
	}
	if cfg.BatchDelay == 0 {
		cfg.BatchDelay = 25 * time.Millisecond
	}
	if cfg.BurstInterval == 0 {
		cfg.BurstInterval = 100 * time.Millisecond
	}
	s := &Server{cfg: cfg, log: cfg.Logger, pending: newPendingLogins(cfg.PendingLogins), conns: map[io.Closer]struct{}{}}
	s.reg = NewRegistry(RegistryOptions{
		Policy:          cfg.Policy,
		DERPMap:         cfg.DERPMap,
		Domain:          cfg.Domain,
		OfflineDebounce: cfg.OfflineDebounce,
		EphemeralAfter:  cfg.EphemeralAfter,
		OnOffline:       s.persistLastSeen,
		OnEphemeralIdle: s.deleteEphemeral,
	})
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /key", s.serveKey)
	s.mux.HandleFunc("/ts2021", s.serveNoiseUpgrade)
	s.mux.HandleFunc("/login/node/{id}", s.serveLoginPage)
	return s, nil
}

// Registry exposes the live tailnet state (for the API and tests).
func (s *Server) Registry() *Registry { return s.reg }

// Handler serves /key, /ts2021 and the interactive login page.
func (s *Server) Handler() http.Handler { return s.mux }

// Load reads all users and nodes from the store into memory.
func (s *Server) Load(ctx context.Context) error {
	users, err := s.cfg.Store.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("load users: %w", err)
	}
	for _, u := range users {
		s.reg.SetUser(userFromStore(u))
	}
	nodes, err := s.cfg.Store.ListNodes(ctx)
	if err != nil {
		return fmt.Errorf("load nodes: %w", err)
	}
	for _, sn := range nodes {
		n, err := nodeFromStore(sn)
		if err != nil {
			return fmt.Errorf("load node %d: %w", sn.ID, err)
		}
		s.reg.Upsert(n)
	}
	return nil
}

// Close ends every map stream, Noise connection and pending login. It
// can be called more than once.
func (s *Server) Close() error {
	for c := range s.takeConns() {
		c.Close()
	}
	s.reg.Close()
	s.pending.close()
	return nil
}

// takeConns marks the server closed and returns the live Noise
// connections.
func (s *Server) takeConns() map[io.Closer]struct{} {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	s.closed = true
	conns := s.conns
	s.conns = map[io.Closer]struct{}{}
	return conns
}

// AdmitNodeKey reports whether a node key belongs to a registered,
// unexpired node (the DERP relay's admission check).
func (s *Server) AdmitNodeKey(k key.NodePublic) bool {
	n := s.reg.NodeByKey(k)
	return n != nil && !n.Expired(time.Now())
}

// SetUser tells the control plane about a new or changed user.
func (s *Server) SetUser(u store.User) { s.reg.SetUser(userFromStore(u)) }

// DeleteNode removes a node from the store and the tailnet.
func (s *Server) DeleteNode(ctx context.Context, id int64) error {
	if err := s.cfg.Store.DeleteNode(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	s.reg.Remove(tailcfg.NodeID(id))
	return nil
}

// NodeName returns n's MagicDNS name.
func (s *Server) NodeName(n *Node) string { return s.reg.FQDN(n) }

// persistLastSeen writes the node's state when it went offline.
func (s *Server) persistLastSeen(id tailcfg.NodeID, _ time.Time) {
	s.log.Debug("node offline", "node", id)
	s.persistState(context.Background(), id)
}

// persistState writes the node's current state (endpoints, Hostinfo,
// last seen...) to the store. persistMu orders the writes, so the store
// ends with the latest in-memory state, never an older copy written last.
// A node deleted meanwhile is not written back (the store only updates).
func (s *Server) persistState(ctx context.Context, id tailcfg.NodeID) {
	s.persistMu.Lock()
	defer s.persistMu.Unlock()
	n := s.reg.Node(id)
	if n == nil {
		return
	}
	if err := s.cfg.Store.UpdateNodeState(ctx, nodeToStore(n)); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("persist node state", "node", id, "err", err)
	}
}

func (s *Server) deleteEphemeral(id tailcfg.NodeID) {
	s.log.Info("deleting idle ephemeral node", "node", id)
	if err := s.DeleteNode(context.Background(), int64(id)); err != nil {
		s.log.Warn("delete ephemeral node", "node", id, "err", err)
	}
}

func userFromStore(u store.User) User {
	return User{ID: u.ID, Username: u.Username, Admin: u.IsAdmin()}
}

func nodeFromStore(sn store.Node) (*Node, error) {
	n := &Node{
		ID:        tailcfg.NodeID(sn.ID),
		StableID:  tailcfg.StableNodeID(sn.StableID),
		Owner:     sn.UserID,
		AgentID:   sn.AgentID,
		Hostname:  sn.Hostname,
		GivenName: sn.GivenName,
		HomeDERP:  sn.HomeDERP,
		Ephemeral: sn.Ephemeral,
		Cap:       tailcfg.CapabilityVersion(sn.CapVersion),
		KeyExpiry: sn.KeyExpiry,
		Created:   sn.CreatedAt,
		LastSeen:  sn.LastSeen,
	}
	if err := n.MachineKey.UnmarshalText([]byte(sn.MachineKey)); err != nil {
		return nil, fmt.Errorf("machine key: %w", err)
	}
	if err := n.NodeKey.UnmarshalText([]byte(sn.NodeKey)); err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	if sn.DiscoKey != "" {
		if err := n.DiscoKey.UnmarshalText([]byte(sn.DiscoKey)); err != nil {
			return nil, fmt.Errorf("disco key: %w", err)
		}
	}
	for _, a := range []string{sn.IPv4, sn.IPv6} {
		addr, err := netip.ParseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("address: %w", err)
		}
		n.Addresses = append(n.Addresses, netip.PrefixFrom(addr, addr.BitLen()))
	}
	if sn.Hostinfo != "" && sn.Hostinfo != "{}" {
		n.Hostinfo = new(tailcfg.Hostinfo)
		if err := json.Unmarshal([]byte(sn.Hostinfo), n.Hostinfo); err != nil {
			return nil, fmt.Errorf("hostinfo: %w", err)
		}
	}
	if err := json.Unmarshal([]byte(sn.Endpoints), &n.Endpoints); err != nil {
		return nil, fmt.Errorf("endpoints: %w", err)
	}
	return n, nil
}

func nodeToStore(n *Node) store.Node {
	hi, _ := json.Marshal(n.Hostinfo)
	if n.Hostinfo == nil {
		hi = []byte("{}")
	}
	eps, _ := json.Marshal(n.Endpoints)
	if n.Endpoints == nil {
		eps = []byte("[]")
	}
	sn := store.Node{
		ID:         int64(n.ID),
		StableID:   string(n.StableID),
		UserID:     n.Owner,
		AgentID:    n.AgentID,
		MachineKey: n.MachineKey.String(),
		NodeKey:    n.NodeKey.String(),
		Hostname:   n.Hostname,
		GivenName:  n.GivenName,
		Hostinfo:   string(hi),
		Endpoints:  string(eps),
		HomeDERP:   n.HomeDERP,
		Ephemeral:  n.Ephemeral,
		CapVersion: int(n.Cap),
		KeyExpiry:  n.KeyExpiry,
		LastSeen:   n.LastSeen,
	}
	if !n.DiscoKey.IsZero() {
		sn.DiscoKey = n.DiscoKey.String()
	}
	return sn
}

// sanitizeHostname turns a reported hostname into a DNS label.
func sanitizeHostname(h string) string {
	h = strings.ToLower(h)
	var b strings.Builder
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '-' || r == '_' || r == '.' || r == ' ':
			b.WriteByte('-')
		}
		if b.Len() >= 48 {
			break
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" {
		return "node"
	}
	return out
}

// Policy returns the access policy the server enforces.
func (s *Server) Policy() Policy { return s.cfg.Policy }
