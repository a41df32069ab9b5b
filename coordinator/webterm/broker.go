package webterm

import (
	"context"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/devmesh/devmesh/coordinator/client"
)

// connectedWindow is how recently an agent must have polled to count as
// listening for terminal requests (a poll lasts pollWait).
const connectedWindow = pollWait + 10*time.Second

// broker hands terminal requests to agents, which long-poll for them,
// and carries their answers (an SDP answer or a WebSocket dialled back)
// to the waiting browser request. It lives in one coordinator process:
// with several replicas the agent's poll and the browser's request must
// reach the same one (see docs/terminal.md).
type broker struct {
	mu     sync.Mutex
	agents map[int64]*agentQueue // guarded by mu
	reqs   map[string]*pending   // by request id; guarded by mu
}

type agentQueue struct {
	queued   []*pending
	wake     chan struct{} // closed and replaced when a request is queued
	lastPoll time.Time
	polling  int
}

// pending is one request from its submission until the browser's
// handler gives up or gets its answer.
type pending struct {
	req     client.TerminalRequest
	agentID int64
	answer  chan client.TerminalAgentAnswer // buffered 1
	relay   chan relayConn                  // buffered 1
}

// relayConn is the agent's WebSocket for a relay request; the browser's
// handler closes done when it no longer needs it.
type relayConn struct {
	conn *websocket.Conn
	done chan struct{}
}

func newBroker() *broker {
	return &broker{agents: map[int64]*agentQueue{}, reqs: map[string]*pending{}}
}

func (b *broker) queueLocked(agentID int64) *agentQueue {
	q, ok := b.agents[agentID]
	if !ok {
		q = &agentQueue{wake: make(chan struct{})}
		b.agents[agentID] = q
	}
	return q
}

// connected reports whether the agent is polling or polled recently.
func (b *broker) connected(agentID int64, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, ok := b.agents[agentID]
	return ok && (q.polling > 0 || now.Sub(q.lastPoll) < connectedWindow)
}

// submit queues req for the agent.
func (b *broker) submit(agentID int64, req client.TerminalRequest) *pending {
	p := &pending{req: req, agentID: agentID, answer: make(chan client.TerminalAgentAnswer, 1), relay: make(chan relayConn, 1)}
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.queueLocked(agentID)
	q.queued = append(q.queued, p)
	b.reqs[req.ID] = p
	close(q.wake)
	q.wake = make(chan struct{})
	return p
}

// done forgets p, queued or not.
func (b *broker) done(p *pending) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.reqs, p.req.ID)
	if q, ok := b.agents[p.agentID]; ok {
		for i, x := range q.queued {
			if x == p {
				q.queued = append(q.queued[:i], q.queued[i+1:]...)
				break
			}
		}
	}
}

// poll returns the agent's queued requests, waiting up to wait for one.
func (b *broker) poll(ctx context.Context, agentID int64, wait time.Duration) []client.TerminalRequest {
	t := time.NewTimer(wait)
	defer t.Stop()
	b.mu.Lock()
	q := b.queueLocked(agentID)
	q.polling++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		q.polling--
		q.lastPoll = time.Now()
		b.mu.Unlock()
	}()
	for {
		b.mu.Lock()
		if len(q.queued) > 0 {
			out := make([]client.TerminalRequest, len(q.queued))
			for i, p := range q.queued {
				out[i] = p.req
			}
			q.queued = nil
			b.mu.Unlock()
			return out
		}
		wake := q.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-t.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// lookup returns the agent's request id, if it is still waited for.
func (b *broker) lookup(agentID int64, id string) (*pending, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.reqs[id]
	if !ok || p.agentID != agentID {
		return nil, false
	}
	return p, true
}
