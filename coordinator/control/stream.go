package control

import (
	"context"
	"time"

	"tailscale.com/tailcfg"
)

// Stream is one open map long-poll of a node. Only the newest stream of a
// node receives deltas; an older one ends with errReplaced.
type Stream struct {
	r    *Registry
	id   tailcfg.NodeID
	s    *session
	gen  uint64
	done chan struct{}

	// wentOnline is set when opening this stream brought the node
	// online; queued is when the changes of the last message taken were
	// first queued; sent is when the last message was taken. They are
	// read by the stream's own goroutine only.
	wentOnline bool
	queued     time.Time
	sent       time.Time
}

// Pacing says how long a stream lets changes accumulate before it sends
// them.
type Pacing struct {
	// Batch is how long a change waits for others to coalesce with.
	Batch time.Duration
	// Burst is the least time between two messages of a busy stream: a
	// change that comes within Burst of the stream's last message waits
	// until Burst has passed (rounded up to a tick, see burstWait), and
	// takes every change that came meanwhile with it. An isolated change
	// goes out after Batch. So a burst (a registration storm) costs each
	// stream one larger message per Burst instead of one per change: the
	// cost of a message (building it under the lock, encoding, a write)
	// is paid less often, and the busier the server, the more each
	// message carries.
	Burst time.Duration
}

// burstWait is how much longer a message of a burst waits, the last one
// having been sent at lastSent: until Burst has passed, rounded up to a
// multiple of Burst on the clock. Every stream in a burst then takes its
// message at the same ticks, so they carry the same changes and share
// the compressed peer list (see sharedFrames).
func (p Pacing) burstWait(lastSent time.Time) time.Duration {
	if p.Burst <= 0 {
		return 0
	}
	at := lastSent.Add(p.Burst)
	if tick := at.Truncate(p.Burst); tick.Before(at) {
		at = tick.Add(p.Burst)
	}
	return time.Until(at)
}

// OpenStream starts a map stream for the node and returns it with the
// full first map. It marks the node online.
func (r *Registry) OpenStream(id tailcfg.NodeID) (*Stream, *mapMsg, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, nil, errClosed
	}
	n := r.ix.node(id)
	if n == nil {
		return nil, nil, errGone
	}
	s := r.sessions[id]
	if s == nil {
		s = &session{wake: make(chan struct{}, 1)}
		r.sessions[id] = s
	}
	if s.gen != 0 {
		close(s.done) // tell the previous stream it was replaced
	}
	s.gen++
	s.done = make(chan struct{})
	s.goneErr = nil
	s.pending = nil // the full map below supersedes anything queued
	s.streams++
	s.stopTimers()
	wentOnline := !n.Online
	if wentOnline {
		r.dispatchLocked(r.ix.patch(id, patchOnline, func(n *Node) { n.Online = true }))
		n = r.ix.node(id)
	}
	st := &Stream{r: r, id: id, s: s, gen: s.gen, done: s.done, wentOnline: wentOnline, sent: time.Now()}
	return st, r.ix.fullMsg(n, r.env), nil
}

// Next blocks until there is a delta to send, then waits as p says for
// more changes to coalesce and returns the message. It returns nil, nil
// when the keepalive interval passed with nothing to send.
func (st *Stream) Next(ctx context.Context, keepAlive time.Duration, p Pacing) (*mapMsg, error) {
	t := time.NewTimer(keepAlive)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-st.done:
			return nil, st.endErr()
		case <-t.C:
			return nil, nil
		case <-st.s.wake:
		}
		if err := st.sleep(ctx, max(p.Batch, p.burstWait(st.sent))); err != nil {
			return nil, err
		}
		if m, err := st.take(); m != nil || err != nil {
			st.sent = time.Now()
			return m, err
		}
	}
}

// sleep waits d (if positive), or until the stream ends.
func (st *Stream) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-st.done:
		return st.endErr()
	}
}

func (st *Stream) endErr() error {
	st.r.mu.Lock()
	defer st.r.mu.Unlock()
	if st.s.goneErr != nil {
		return st.s.goneErr
	}
	return errReplaced
}

// take builds the message for the pending delta, if this stream is still
// the current one.
func (st *Stream) take() (*mapMsg, error) {
	r := st.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if st.s.gen != st.gen {
		return nil, errReplaced
	}
	n := r.ix.node(st.id)
	if n == nil {
		return nil, errGone
	}
	d := st.s.pending
	st.s.pending = nil
	if d == nil || d.empty() {
		return nil, nil
	}
	st.queued = st.s.queued
	return r.ix.deltaMsg(n, d, r.env), nil
}

// Close ends the stream. When a node's last stream has been closed for
// the offline debounce, it is marked offline; an ephemeral node is
// deleted after the ephemeral timeout.
func (st *Stream) Close() {
	r := st.r
	r.mu.Lock()
	defer r.mu.Unlock()
	s := st.s
	if r.sessions[st.id] != s {
		return // node removed
	}
	s.streams--
	if s.streams > 0 {
		return
	}
	s.stopTimers()
	s.offlineTimer = time.AfterFunc(r.offlineDebounce, func() { r.markOffline(st.id, s) })
}

// markOffline marks the node offline if s is still its session and has
// no stream, and reports it to onOffline (outside the lock).
func (r *Registry) markOffline(id tailcfg.NodeID, s *session) {
	if at, ok := r.markOfflineLocked(id, s); ok {
		r.onOffline(id, at)
	}
}

func (r *Registry) markOfflineLocked(id tailcfg.NodeID, s *session) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sessions[id] != s || s.streams > 0 {
		return time.Time{}, false
	}
	now := time.Now()
	r.dispatchLocked(r.ix.patch(id, patchOnline|patchLastSeen, func(n *Node) {
		n.Online = false
		n.LastSeen = now
	}))
	n := r.ix.node(id)
	if n != nil && n.Ephemeral {
		s.ephTimer = time.AfterFunc(r.ephemeralAfter-r.offlineDebounce, func() { r.ephemeralIdle(id, s) })
	}
	return now, true
}
