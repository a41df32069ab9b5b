// Package api serves the coordinator's REST/JSON API under /api/v1:
// accounts, login and sessions, API tokens, tailnet auth keys and nodes.
// It owns authentication (bearer tokens, argon2id passwords) and the
// login rate limits; wire types live in coordinator/client.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"github.com/devmesh/devmesh/coordinator/builds"
	"github.com/devmesh/devmesh/coordinator/control"
	"github.com/devmesh/devmesh/coordinator/metrics"
	"github.com/devmesh/devmesh/coordinator/store"
)

// Control is what the API needs from the control plane
// (*control.Server implements it).
type Control interface {
	// SetUser tells the control plane about a new or changed user.
	SetUser(store.User)
	// DeleteNode removes a node from the store and the tailnet.
	DeleteNode(ctx context.Context, id int64) error
	// ExpireUserNodes logs out all of a user's nodes (disable, delete).
	ExpireUserNodes(ctx context.Context, userID int64) (int, error)
	// Registry is the live tailnet state (nodes, online status).
	Registry() *control.Registry
	// NodeName returns a node's MagicDNS name.
	NodeName(*control.Node) string
	// Policy is the access policy the control plane enforces.
	Policy() control.Policy
}

var _ Control = (*control.Server)(nil)

// Options configures the API.
type Options struct {
	Store   *store.Store
	Control Control
	Logger  *slog.Logger
	// SessionLifetime is how long a login session lasts (default 30 days).
	SessionLifetime time.Duration
	// LoginLimits rate-limits password attempts (zero fields: defaults).
	LoginLimits LoginLimits
	// AccessURL is the coordinator's external URL, given to agents in
	// their manifest (default: the scheme and host agents called).
	AccessURL string
	// Quotas bound what each user may own (zero fields: unlimited).
	Quotas Quotas
	// Builds runs template validation and workspace builds; nil when the
	// coordinator runs no terraform (those endpoints then answer 503).
	Builds *builds.Queue
	// Metrics records failed logins and rate-limit hits (nil: none).
	Metrics *metrics.Auth
}

// API serves /api/v1. Create it with New.
type API struct {
	store   *store.Store
	control Control
	log     *slog.Logger
	session time.Duration
	limits  *loginLimiter
	// kdf bounds concurrent password hashing: each argon2id run holds
	// ~19 MiB, so unbounded concurrency is a memory exhaustion vector.
	kdf chan struct{}
	mux *http.ServeMux

	accessURL string      // Options.AccessURL
	quota     store.Quota // Options.Quotas

	builds *builds.Queue // Options.Builds; nil: provisioning disabled

	metrics *metrics.Auth // Options.Metrics; nil: none
}

// New validates o and returns the API. It starts nothing.
func New(o Options) (*API, error) {
	if o.Store == nil || o.Control == nil {
		return nil, errors.New("api: Store and Control are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Quotas.MaxWorkspacesPerUser < 0 || o.Quotas.MaxExternalAgentsPerUser < 0 {
		return nil, errors.New("api: quotas must be 0 (unlimited) or more")
	}
	if o.SessionLifetime <= 0 {
		o.SessionLifetime = 30 * 24 * time.Hour
	}
	a := &API{
		store:   o.Store,
		control: o.Control,
		log:     o.Logger,
		session: o.SessionLifetime,
		limits:  newLoginLimiter(o.LoginLimits),
		kdf:     make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
		mux:     http.NewServeMux(),
	}
	a.accessURL = o.AccessURL
	a.quota = store.Quota{MaxWorkspaces: o.Quotas.MaxWorkspacesPerUser, MaxExternalAgents: o.Quotas.MaxExternalAgentsPerUser}
	a.builds = o.Builds
	a.metrics = o.Metrics
	a.routes()
	return a, nil
}

func (a *API) routes() {
	m := a.mux
	m.Handle("GET /api/v1/buildinfo", a.public(a.handleBuildInfo))
	m.Handle("POST /api/v1/users/first", a.public(a.handleFirstUser))
	m.Handle("POST /api/v1/login", a.public(a.handleLogin))
	m.Handle("POST /api/v1/logout", a.authed(a.handleLogout))
	m.Handle("GET /api/v1/users/me", a.authed(a.handleMe))
	m.Handle("GET /api/v1/users", a.admin(a.handleListUsers))
	m.Handle("POST /api/v1/users", a.admin(a.handleCreateUser))
	a.accountRoutes()
	m.Handle("GET /api/v1/tokens", a.authed(a.handleListTokens))
	m.Handle("POST /api/v1/tokens", a.authed(a.handleCreateToken))
	m.Handle("DELETE /api/v1/tokens/{name}", a.authed(a.handleDeleteToken))
	m.Handle("GET /api/v1/authkeys", a.authed(a.handleListAuthKeys))
	m.Handle("POST /api/v1/authkeys", a.authed(a.handleCreateAuthKey))
	m.Handle("DELETE /api/v1/authkeys/{id}", a.authed(a.handleRevokeAuthKey))
	m.Handle("GET /api/v1/nodes", a.authed(a.handleListNodes))
	m.Handle("DELETE /api/v1/nodes/{id}", a.authed(a.handleDeleteNode))
	a.workspaceRoutes()
	a.agentRoutes()
	a.provisioningRoutes()
	a.scheduleRoutes()
}

// Handler serves /api/v1/...; mount it at "/api/v1/" without stripping
// the prefix.
func (a *API) Handler() http.Handler { return http.HandlerFunc(a.serveHTTP) }

// serveHTTP answers unknown paths and wrong methods in the API's JSON
// error format instead of the mux's plain text.
func (a *API) serveHTTP(w http.ResponseWriter, r *http.Request) {
	setCommonHeaders(w)
	if h, pattern := a.mux.Handler(r); pattern == "" {
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch {
		case rec.status >= 300 && rec.status < 400:
			a.mux.ServeHTTP(w, r) // path-cleaning redirect
		case rec.status == http.StatusMethodNotAllowed:
			w.Header().Set("Allow", rec.header.Get("Allow"))
			writeError(w, errMethodNotAllowed)
		default:
			writeError(w, errNotFound)
		}
		return
	}
	a.mux.ServeHTTP(w, r)
}

// statusRecorder captures what the mux's fallback handlers would send.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}

func setCommonHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}
