package webterm

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/internal/termproto"
)

// answerTimeout bounds answering one offer (ICE gathering included).
const answerTimeout = 10 * time.Second

// API is what the service needs from the coordinator (*client.Client).
type API interface {
	AgentTerminalKey(ctx context.Context) (client.TerminalKey, error)
	AgentTerminalRequests(ctx context.Context) ([]client.TerminalRequest, error)
	PostAgentTerminalAnswer(ctx context.Context, id string, a client.TerminalAgentAnswer) error
	DialAgentTerminalRelay(ctx context.Context, id string) (*websocket.Conn, error)
}

// Options configures a Service.
type Options struct {
	API API
	// Manager owns the sessions. Required.
	Manager *Manager
	// AgentUUID and Owner are what tickets must name. Required.
	AgentUUID, Owner string
	Logger           *slog.Logger
	// RetryDelay is the pause after a failed poll (default 2s).
	RetryDelay time.Duration
}

// Service takes terminal requests from the coordinator and serves them.
type Service struct {
	o   Options
	log *slog.Logger
	rtc *rtcServer
	wg  sync.WaitGroup // request handlers
}

// NewService validates o.
func NewService(o Options) (*Service, error) {
	if o.API == nil || o.Manager == nil || o.AgentUUID == "" || o.Owner == "" {
		return nil, errors.New("webterm: API, Manager, AgentUUID and Owner are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 2 * time.Second
	}
	return &Service{o: o, log: o.Logger, rtc: newRTCServer(o.Manager, o.Logger)}, nil
}

// Run serves requests until ctx ends, then closes every peer connection
// and session.
func (s *Service) Run(ctx context.Context) error {
	defer s.o.Manager.Close()
	defer s.rtc.close()
	defer s.wg.Wait()
	v, err := s.verifier(ctx)
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		reqs, err := s.o.API.AgentTerminalRequests(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Debug("poll terminal requests", "err", err)
				sleep(ctx, s.o.RetryDelay)
			}
			continue
		}
		for _, r := range reqs {
			s.wg.Go(func() { s.handle(ctx, v, r) })
		}
	}
	return nil
}

// verifier fetches the coordinator's ticket key, retrying until ctx ends.
func (s *Service) verifier(ctx context.Context) (*termproto.Verifier, error) {
	for {
		k, err := s.o.API.AgentTerminalKey(ctx)
		if err == nil {
			return termproto.NewVerifier(ed25519.PublicKey(k.PublicKey), s.o.AgentUUID, s.o.Owner, nil)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.log.Debug("fetch the terminal ticket key", "err", err)
		sleep(ctx, s.o.RetryDelay)
	}
}

func (s *Service) handle(ctx context.Context, v *termproto.Verifier, r client.TerminalRequest) {
	t, err := v.Verify(r.Ticket)
	if err != nil {
		s.log.Warn("terminal request refused", "kind", r.Kind, "err", err)
	}
	switch r.Kind {
	case client.TerminalWebRTC:
		s.answer(ctx, r, t, err)
	case client.TerminalRelay:
		if err == nil {
			err = s.relay(ctx, r, t)
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("relayed terminal", "err", err)
		}
	}
}

func (s *Service) answer(ctx context.Context, r client.TerminalRequest, t termproto.Ticket, verr error) {
	actx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	var a client.TerminalAgentAnswer
	if verr != nil {
		a.Error = verr.Error()
	} else if sdp, err := s.rtc.answer(actx, t, r.Offer, r.ICEServers); err != nil {
		s.log.Warn("answer a terminal offer", "err", err)
		a.Error = err.Error()
	} else {
		a.SDP = sdp
	}
	if err := s.o.API.PostAgentTerminalAnswer(actx, r.ID, a); err != nil && ctx.Err() == nil {
		s.log.Warn("post the terminal answer", "err", err)
	}
}

// relay dials the coordinator back and serves the session over that
// WebSocket until either side closes it.
func (s *Service) relay(ctx context.Context, r client.TerminalRequest, t termproto.Ticket) error {
	dctx, cancel := context.WithTimeout(ctx, answerTimeout)
	conn, err := s.o.API.DialAgentTerminalRelay(dctx, r.ID)
	cancel()
	if err != nil {
		return fmt.Errorf("dial the relay: %w", err)
	}
	conn.SetReadLimit(termproto.MaxFrame)
	tr := &wsTransport{c: conn, ctx: ctx}
	a, err := s.o.Manager.Attach(t, tr, termproto.PathRelayed)
	if err != nil {
		tr.Send(termproto.Frame(termproto.Error, []byte(err.Error())))
		conn.Close(websocket.StatusPolicyViolation, "refused")
		return err
	}
	defer a.Detach()
	for {
		typ, b, err := conn.Read(ctx)
		if err != nil {
			return nil
		}
		if typ == websocket.MessageBinary {
			a.Handle(b)
		}
	}
}

// wsTransport sends frames as binary WebSocket messages.
type wsTransport struct {
	c   *websocket.Conn
	ctx context.Context
}

func (t *wsTransport) Send(f []byte) error {
	ctx, cancel := context.WithTimeout(t.ctx, 30*time.Second)
	defer cancel()
	return t.c.Write(ctx, websocket.MessageBinary, f)
}

func (t *wsTransport) Close() error { return t.c.Close(websocket.StatusNormalClosure, "") }

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
