package webterm

import (
	"context"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/devmesh/devmesh/coordinator/api"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
)

// handleOffer forwards a browser's offer and a fresh ticket to the agent
// and returns the agent's answer. The answer's DTLS fingerprint reaches
// the browser only over this authenticated request, so a peer that
// completes the handshake is the agent that answered.
func (s *Server) handleOffer(w http.ResponseWriter, r *http.Request, u store.User) error {
	var req client.TerminalOfferRequest
	if err := api.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	t, err := s.resolve(r.Context(), u, r.PathValue("name"), req.Agent)
	if err != nil {
		return err
	}
	if err := checkSession(req.Session); err != nil {
		return err
	}
	if req.SDP == "" || len(req.SDP) > maxSDP {
		return api.NewError(http.StatusBadRequest, client.CodeBadRequest, "the offer's SDP is missing or too large")
	}
	if !s.broker.connected(t.agent.ID, time.Now()) {
		return errAgentOffline(t.agent.Name)
	}
	tk, err := s.ticket(t, req.Session)
	if err != nil {
		return err
	}
	p := s.broker.submit(t.agent.ID, client.TerminalRequest{
		ID: uuid.NewString(), Kind: client.TerminalWebRTC, Ticket: tk, Offer: req.SDP, ICEServers: s.o.ICEServers,
	})
	defer s.broker.done(p)
	ctx, cancel := context.WithTimeout(r.Context(), answerWait)
	defer cancel()
	select {
	case a := <-p.answer:
		if a.Error != "" {
			return api.NewError(http.StatusBadGateway, "agent_refused", "the agent refused the terminal: "+a.Error)
		}
		api.WriteJSON(w, http.StatusOK, client.TerminalAnswer{SDP: a.SDP})
		return nil
	case <-ctx.Done():
		return api.NewError(http.StatusGatewayTimeout, "agent_timeout", "the agent did not answer in time")
	}
}

func (s *Server) handleAgentKey(w http.ResponseWriter, r *http.Request, _ store.Agent, _ store.Workspace) error {
	api.WriteJSON(w, http.StatusOK, client.TerminalKey{PublicKey: s.PublicKey()})
	return nil
}

func (s *Server) handleAgentPoll(w http.ResponseWriter, r *http.Request, ag store.Agent, _ store.Workspace) error {
	reqs := s.broker.poll(r.Context(), ag.ID, pollWait)
	if reqs == nil {
		reqs = []client.TerminalRequest{}
	}
	api.WriteJSON(w, http.StatusOK, client.TerminalRequests{Requests: reqs})
	return nil
}

var errNoRequest = api.NewError(http.StatusNotFound, client.CodeNotFound, "no such terminal request (it timed out)")

func (s *Server) handleAgentAnswer(w http.ResponseWriter, r *http.Request, ag store.Agent, _ store.Workspace) error {
	p, ok := s.broker.lookup(ag.ID, r.PathValue("id"))
	if !ok || p.req.Kind != client.TerminalWebRTC {
		return errNoRequest
	}
	var a client.TerminalAgentAnswer
	if err := api.DecodeJSON(w, r, &a); err != nil {
		return err
	}
	if len(a.SDP) > maxSDP || len(a.Error) > 1024 {
		return api.NewError(http.StatusBadRequest, client.CodeBadRequest, "answer too large")
	}
	select {
	case p.answer <- a:
	default: // answered already
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleAgentRelay takes the agent's WebSocket for a relay request and
// holds it until the browser's side is done with it.
func (s *Server) handleAgentRelay(w http.ResponseWriter, r *http.Request, ag store.Agent, _ store.Workspace) error {
	p, ok := s.broker.lookup(ag.ID, r.PathValue("id"))
	if !ok || p.req.Kind != client.TerminalRelay {
		return errNoRequest
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return nil // Accept answered
	}
	rc := relayConn{conn: c, done: make(chan struct{})}
	select {
	case p.relay <- rc:
	default:
		c.Close(websocket.StatusPolicyViolation, "already connected")
		return nil
	}
	select {
	case <-rc.done:
	case <-r.Context().Done():
	}
	return nil
}
