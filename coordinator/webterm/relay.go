package webterm

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/termproto"
)

// handleUserRelay is the relayed path: the browser's WebSocket is
// spliced, frame by frame, to a WebSocket the agent dials back over its
// authenticated agent API connection.
func (s *Server) handleUserRelay(w http.ResponseWriter, r *http.Request, u store.User) error {
	q := r.URL.Query()
	t, err := s.resolve(r.Context(), u, r.PathValue("name"), q.Get("agent"))
	if err != nil {
		return err
	}
	session := q.Get("session")
	if err := checkSession(session); err != nil {
		return err
	}
	if !s.broker.connected(t.agent.ID, time.Now()) {
		return errAgentOffline(t.agent.Name)
	}
	tk, err := s.ticket(t, session)
	if err != nil {
		return err
	}
	// Accept checks that the Origin is this host: another site's page
	// cannot open a terminal with the user's cookie.
	browser, err := websocket.Accept(w, r, nil)
	if err != nil {
		return nil
	}
	browser.SetReadLimit(termproto.MaxFrame)
	p := s.broker.submit(t.agent.ID, client.TerminalRequest{ID: uuid.NewString(), Kind: client.TerminalRelay, Ticket: tk})
	defer s.broker.done(p)
	ctx, cancel := context.WithTimeout(r.Context(), answerWait)
	var rc relayConn
	select {
	case rc = <-p.relay:
	case <-ctx.Done():
	}
	cancel()
	if rc.conn == nil {
		browser.Write(r.Context(), websocket.MessageBinary, termproto.Frame(termproto.Error, []byte("the agent did not connect the relay in time")))
		browser.Close(websocket.StatusTryAgainLater, "agent timeout")
		return nil
	}
	defer close(rc.done)
	splice(r.Context(), browser, rc.conn)
	return nil
}

// splice copies messages both ways until either side closes, then
// closes both.
func splice(ctx context.Context, a, b *websocket.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.SetReadLimit(termproto.MaxFrame)
	var wg sync.WaitGroup
	pump := func(dst, src *websocket.Conn) {
		defer cancel()
		for {
			typ, m, err := src.Read(ctx)
			if err != nil {
				return
			}
			if err := dst.Write(ctx, typ, m); err != nil {
				return
			}
		}
	}
	wg.Go(func() { pump(a, b) })
	wg.Go(func() { pump(b, a) })
	<-ctx.Done()
	a.Close(websocket.StatusNormalClosure, "")
	b.Close(websocket.StatusNormalClosure, "")
	wg.Wait()
}
