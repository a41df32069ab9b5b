package control

import (
	"errors"
	"slices"
	"sync"
	"time"

	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// errReplaced ends a map stream that a newer stream of the same node took
// over; errGone ends one whose node was deleted.
var (
	errReplaced = errors.New("map stream replaced by a newer one")
	errGone     = errors.New("node deleted")
	errClosed   = errors.New("control plane closed")
)

// Registry is the live state of the tailnet: the index of nodes plus a
// session per node with an open map stream. It turns each change into
// deltas and queues them on the affected sessions only. It does no I/O;
// the callbacks report state that should be persisted.
type Registry struct {
	env             *mapEnv
	offlineDebounce time.Duration
	ephemeralAfter  time.Duration
	// onOffline is called (without mu) when a node's last stream has
	// been closed for offlineDebounce.
	onOffline func(id tailcfg.NodeID, lastSeen time.Time)
	// onEphemeralIdle is called (without mu) when an ephemeral node has
	// had no stream for ephemeralAfter; it should delete the node.
	onEphemeralIdle func(id tailcfg.NodeID)

	mu       sync.Mutex // guards ix, sessions (and their fields), expiry and closed
	ix       *index
	sessions map[tailcfg.NodeID]*session
	// expiry holds a timer per node with a future key expiry, which tells
	// the node and its peers when the key expires.
	expiry map[tailcfg.NodeID]*time.Timer
	closed bool
}

// session is one node's delivery queue. Exactly one stream (the newest)
// drains it, so all messages to a node are sent in order by one goroutine.
type session struct {
	pending      *delta        // merged changes not yet sent
	queued       time.Time     // when pending was started (fan-out delay)
	wake         chan struct{} // cap 1: pending became non-empty
	gen          uint64        // generation of the stream allowed to send
	done         chan struct{} // closed when stream gen is replaced or the node is gone
	goneErr      error
	streams      int // open streams (a replaced one may linger briefly)
	offlineTimer *time.Timer
	ephTimer     *time.Timer
}

// RegistryOptions configures a Registry.
type RegistryOptions struct {
	Policy          Policy
	DERPMap         *tailcfg.DERPMap
	Domain          string
	OfflineDebounce time.Duration // default 2s
	EphemeralAfter  time.Duration // default 30s
	OnOffline       func(id tailcfg.NodeID, lastSeen time.Time)
	OnEphemeralIdle func(id tailcfg.NodeID)
}

// NewRegistry returns an empty registry.
func NewRegistry(o RegistryOptions) *Registry {
	if o.OfflineDebounce == 0 {
		o.OfflineDebounce = 2 * time.Second
	}
	if o.EphemeralAfter == 0 {
		o.EphemeralAfter = 30 * time.Second
	}
	nop := func(tailcfg.NodeID, time.Time) {}
	if o.OnOffline == nil {
		o.OnOffline = nop
	}
	if o.OnEphemeralIdle == nil {
		o.OnEphemeralIdle = func(tailcfg.NodeID) {}
	}
	return &Registry{
		env:             &mapEnv{derpMap: o.DERPMap, domain: o.Domain, now: time.Now},
		offlineDebounce: o.OfflineDebounce,
		ephemeralAfter:  o.EphemeralAfter,
		onOffline:       o.OnOffline,
		onEphemeralIdle: o.OnEphemeralIdle,
		ix:              newIndex(o.Policy),
		sessions:        map[tailcfg.NodeID]*session{},
		expiry:          map[tailcfg.NodeID]*time.Timer{},
	}
}

// SetUser adds or updates a user; it must precede the user's nodes.
func (r *Registry) SetUser(u User) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ix.setUser(u)
}

// Node returns the node with that ID, or nil. The result must not be
// modified.
func (r *Registry) Node(id tailcfg.NodeID) *Node {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ix.node(id)
}

// NodeByKey returns the node with that node key, or nil.
func (r *Registry) NodeByKey(k key.NodePublic) *Node {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ix.nodeByKey(k)
}

// Nodes returns the nodes owned by owner (all nodes if owner is 0).
func (r *Registry) Nodes(owner int64) []*Node {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*Node
	for _, n := range r.ix.nodes {
		if owner == 0 || n.Owner == owner {
			out = append(out, n)
		}
	}
	return out
}

// Upsert adds a node, or replaces one wholesale (loading the store, a new
// registration). A change to a live node goes through Update instead,
// which works on the current node and never re-inserts a removed one.
func (r *Registry) Upsert(n *Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.ix.node(n.ID)
	if old != nil {
		n.Online = old.Online
	}
	r.dispatchLocked(r.ix.upsert(n))
	r.scheduleExpiryLocked(n)
	if old == nil && n.Ephemeral && r.sessions[n.ID] == nil && !r.closed {
		// An ephemeral node that never connects (or does not come back
		// after a coordinator restart) is deleted like one that left.
		s := &session{wake: make(chan struct{}, 1)}
		r.sessions[n.ID] = s
		s.ephTimer = time.AfterFunc(r.ephemeralAfter, func() { r.ephemeralIdle(n.ID, s) })
	}
}

// Change tells Update how to announce an edit of a node.
type Change struct {
	// Skip drops the edit: nothing changed.
	Skip bool
	// Whole announces the node as a whole (PeersChanged, new filters
	// where reachability changed). Update forces it when the edit touched
	// anything visibility or naming depends on.
	Whole bool
	// Fields, for an edit that is not Whole, are sent to the node's
	// viewers as a PeersChangedPatch; with none the edit is stored
	// silently.
	Fields patchFields
}

// Update is the registry's read-modify-write: under the lock it passes
// edit a copy of the current node, stores the copy and announces it as
// edit's Change says. edit must only change the node (no I/O, no calls
// into the registry). If the node is gone, edit is not called and Update
// returns nil, false: a removed node is never brought back. Otherwise it
// returns the node as now stored (not to be modified).
func (r *Registry) Update(id tailcfg.NodeID, edit func(n *Node) Change) (*Node, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.ix.node(id)
	if cur == nil {
		return nil, false
	}
	n := cur.clone()
	c := edit(n)
	if c.Skip {
		return cur, true
	}
	n.ID, n.Online = cur.ID, cur.Online
	if !c.Whole && !samePeerIdentity(cur, n) {
		c.Whole = true
	}
	if c.Whole {
		r.dispatchLocked(r.ix.upsert(n))
		r.scheduleExpiryLocked(n)
	} else {
		r.dispatchLocked(r.ix.patch(id, c.Fields, func(m *Node) { *m = *n }))
	}
	return r.ix.node(id), true
}

// samePeerIdentity reports whether a and b agree on everything a patch
// may not change: who owns the node, its key, expiry, names and addresses.
func samePeerIdentity(a, b *Node) bool {
	return a.Owner == b.Owner && a.AgentID == b.AgentID && a.NodeKey == b.NodeKey &&
		a.KeyExpiry.Equal(b.KeyExpiry) && a.GivenName == b.GivenName && a.Ephemeral == b.Ephemeral &&
		slices.Equal(a.Addresses, b.Addresses)
}

// FullMap returns the complete map for the node, or errGone.
func (r *Registry) FullMap(id tailcfg.NodeID) (*mapMsg, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.ix.node(id)
	if n == nil {
		return nil, errGone
	}
	return r.ix.fullMsg(n, r.env), nil
}

// FQDN returns n's MagicDNS name.
func (r *Registry) FQDN(n *Node) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ix.fqdn(n, r.env)
}

// User returns the user with that ID (the zero User if unknown).
func (r *Registry) User(id int64) User {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ix.users[id]
}

// scheduleExpiryLocked arms a timer that re-announces n when its key
// expires, so that it and its peers see it as expired.
func (r *Registry) scheduleExpiryLocked(n *Node) {
	if t := r.expiry[n.ID]; t != nil {
		t.Stop()
		delete(r.expiry, n.ID)
	}
	wait := time.Until(n.KeyExpiry)
	if n.KeyExpiry.IsZero() || wait <= 0 || r.closed {
		return
	}
	id := n.ID
	r.expiry[id] = time.AfterFunc(wait, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if cur := r.ix.node(id); cur != nil && cur.Expired(time.Now()) && !r.closed {
			delete(r.expiry, id)
			r.dispatchLocked(r.ix.upsert(cur.clone()))
		}
	})
}

// ephemeralIdle deletes an ephemeral node whose session s still has no
// stream.
func (r *Registry) ephemeralIdle(id tailcfg.NodeID, s *session) {
	if r.isIdle(id, s) {
		r.onEphemeralIdle(id)
	}
}

// isIdle reports whether s is still id's session and has no stream.
func (r *Registry) isIdle(id tailcfg.NodeID, s *session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions[id] == s && s.streams == 0
}

// Remove deletes a node and ends its streams.
func (r *Registry) Remove(id tailcfg.NodeID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dispatchLocked(r.ix.remove(id))
	if t := r.expiry[id]; t != nil {
		t.Stop()
		delete(r.expiry, id)
	}
	if s := r.sessions[id]; s != nil {
		s.end(errGone)
		delete(r.sessions, id)
	}
}

// Patch changes fields of a node that do not affect who sees it and
// tells its viewers with a PeersChangedPatch.
func (r *Registry) Patch(id tailcfg.NodeID, fields patchFields, mutate func(*Node)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dispatchLocked(r.ix.patch(id, fields, mutate))
}

// dispatchLocked queues deltas on the sessions of the nodes they concern.
// Nodes without a session get a full map when they connect.
func (r *Registry) dispatchLocked(ds deltas) {
	var now time.Time
	for id, d := range ds {
		s := r.sessions[id]
		if s == nil || s.gen == 0 {
			continue
		}
		if s.pending == nil {
			if now.IsZero() {
				now = time.Now()
			}
			s.pending, s.queued = &delta{}, now
		}
		s.pending.merge(d)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *session) stopTimers() {
	if s.offlineTimer != nil {
		s.offlineTimer.Stop()
		s.offlineTimer = nil
	}
	if s.ephTimer != nil {
		s.ephTimer.Stop()
		s.ephTimer = nil
	}
}

// Close ends every stream.
func (r *Registry) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	for id, s := range r.sessions {
		s.end(errGone)
		delete(r.sessions, id)
	}
	for id, t := range r.expiry {
		t.Stop()
		delete(r.expiry, id)
	}
}

// end stops the session's timers and ends its current stream, if any.
func (s *session) end(err error) {
	s.stopTimers()
	if s.done != nil && s.goneErr == nil {
		s.goneErr = err
		close(s.done)
	}
}
