// Package webterm is the coordinator's side of the browser terminal
// (docs/terminal.md): the terminal page and its assets, signalling
// (a browser's WebRTC offer goes to the agent with a ticket the
// coordinator signs; the agent's answer comes back), and the relayed
// path (a WebSocket from the browser spliced to one the agent dials
// back). The coordinator never sees a direct terminal's keystrokes.
package webterm

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/devmesh/devmesh/coordinator/api"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/termproto"
)

const (
	// pollWait is how long an agent's poll waits for a request.
	pollWait = 20 * time.Second
	// answerWait bounds the wait for an agent's answer or relay dial.
	answerWait = 15 * time.Second
	// maxSDP bounds an offer.
	maxSDP = 64 << 10
)

// ticketKeySecret names the ticket-signing key in the store's secrets.
const ticketKeySecret = "terminal_ticket_key"

// Options configures a Server.
type Options struct {
	Store *store.Store
	API   *api.API
	// ICEServers are the STUN URLs given to browsers and agents
	// ("stun:host:port"), normally the coordinator's own STUN.
	ICEServers []string
	// AdminsReachAll lets admins open any workspace's terminal.
	AdminsReachAll bool
	Logger         *slog.Logger
}

// Server serves the browser terminal's endpoints.
type Server struct {
	o      Options
	log    *slog.Logger
	key    ed25519.PrivateKey
	broker *broker
}

// New loads (or creates, once) the ticket-signing key.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Store == nil || o.API == nil {
		return nil, errors.New("webterm: Store and API are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	seed, err := o.Store.GetOrCreateSecret(ctx, ticketKeySecret, func() (string, error) {
		_, k, err := ed25519.GenerateKey(nil)
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(k.Seed()), nil
	})
	if err != nil {
		return nil, fmt.Errorf("terminal ticket key: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(seed)
	if err != nil || len(raw) != ed25519.SeedSize {
		return nil, errors.New("terminal ticket key: the stored key is malformed")
	}
	return &Server{o: o, log: o.Logger, key: ed25519.NewKeyFromSeed(raw), broker: newBroker()}, nil
}

// PublicKey is the ticket-verification key agents use.
func (s *Server) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Mount registers the API endpoints and /static/term/ on mux.
func (s *Server) Mount(mux *http.ServeMux) {
	a := s.o.API
	mux.Handle("POST /api/v1/workspaces/{name}/terminal/offer", a.UserAuthed(s.handleOffer))
	mux.Handle("GET /api/v1/workspaces/{name}/terminal/ws", a.UserAuthed(s.handleUserRelay))
	mux.Handle("GET /api/v1/agent/terminal/key", a.AgentAuthed(s.handleAgentKey))
	mux.Handle("GET /api/v1/agent/terminal/requests", a.AgentAuthed(s.handleAgentPoll))
	mux.Handle("POST /api/v1/agent/terminal/requests/{id}/answer", a.AgentAuthed(s.handleAgentAnswer))
	mux.Handle("GET /api/v1/agent/terminal/requests/{id}/relay", a.AgentAuthed(s.handleAgentRelay))
	mux.Handle("GET /static/term/", staticHandler())
}

var errNoWorkspace = api.NewError(http.StatusNotFound, client.CodeNotFound, "no such workspace")

// target is the agent a terminal request goes to.
type target struct {
	user  store.User
	owner store.User
	ws    store.Workspace
	agent store.Agent
}

// resolve finds the workspace "WS" or "OWNER/WS" and its agent for u.
// Another user's workspace is answered exactly like a missing one,
// unless u is an admin and admins reach all workspaces.
func (s *Server) resolve(ctx context.Context, u store.User, name, agentName string) (target, error) {
	ownerName, wsName, qualified := strings.Cut(name, "/")
	if !qualified {
		ownerName, wsName = u.Username, name
	}
	ownerName = strings.TrimPrefix(ownerName, "@")
	owner := u
	if ownerName != u.Username {
		if !u.IsAdmin() || !s.o.AdminsReachAll {
			return target{}, errNoWorkspace
		}
		o, err := s.o.Store.UserByName(ctx, ownerName)
		if errors.Is(err, store.ErrNotFound) {
			return target{}, errNoWorkspace
		} else if err != nil {
			return target{}, fmt.Errorf("look up user: %w", err)
		}
		owner = o
	}
	ws, err := s.o.Store.WorkspaceByName(ctx, owner.ID, wsName)
	if errors.Is(err, store.ErrNotFound) {
		return target{}, errNoWorkspace
	} else if err != nil {
		return target{}, fmt.Errorf("look up workspace: %w", err)
	}
	agents, err := s.o.Store.ListAgents(ctx, ws.ID)
	if err != nil {
		return target{}, fmt.Errorf("list agents: %w", err)
	}
	t := target{user: u, owner: owner, ws: ws}
	for _, ag := range agents {
		if ag.Name == agentName || (agentName == "" && len(agents) == 1) {
			t.agent = ag
			return t, nil
		}
	}
	if agentName == "" && len(agents) > 1 {
		return target{}, api.NewError(http.StatusBadRequest, client.CodeBadRequest, "the workspace has several agents: name one with ?agent=NAME")
	}
	return target{}, api.NewError(http.StatusNotFound, client.CodeNotFound, "the workspace has no such agent (is it started?)")
}

// ticket signs a ticket for t and the session.
func (s *Server) ticket(t target, session string) (string, error) {
	return termproto.Sign(s.key, termproto.Ticket{
		UserID:    t.user.ID,
		User:      t.user.Username,
		Admin:     t.user.ID != t.owner.ID,
		AgentUUID: t.agent.UUID,
		SessionID: session,
		Nonce:     termproto.NewNonce(),
		Expires:   time.Now().Add(termproto.TicketLifetime).UnixMilli(),
	})
}

// checkSession validates a browser's session id: a UUID.
func checkSession(id string) error {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return api.NewError(http.StatusBadRequest, client.CodeBadRequest, "the terminal session id must be a UUID")
	}
	return nil
}

func errAgentOffline(name string) error {
	return api.NewError(http.StatusServiceUnavailable, "agent_unreachable",
		fmt.Sprintf("the agent %q is not connected to the coordinator; is the workspace started?", name))
}
