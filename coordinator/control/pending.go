package control

import (
	"net/netip"
	"sync"
	"time"

	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// PendingLoginLimits bounds the interactive logins waiting for a user on
// their AuthURL. Anyone who reaches the server can start one, so each is
// small and their number is capped per machine key, per source address
// and in total; over a cap, the register request is refused.
type PendingLoginLimits struct {
	PerMachine int           // per client machine key (default 4)
	PerSource  int           // per source IP address (default 32)
	Total      int           // in all (default 1024)
	TTL        time.Duration // how long an AuthURL stays valid (default 10m)
}

func (l PendingLoginLimits) withDefaults() PendingLoginLimits {
	if l.PerMachine <= 0 {
		l.PerMachine = 4
	}
	if l.PerSource <= 0 {
		l.PerSource = 32
	}
	if l.Total <= 0 {
		l.Total = 1024
	}
	if l.TTL <= 0 {
		l.TTL = 10 * time.Minute
	}
	return l
}

// Refusals over the pending login caps, shown by the client.
const (
	refusePerMachine = "too many logins pending for this machine; use the login link shown earlier or wait for it to expire"
	refusePerSource  = "too many logins pending from this address; use a login link shown earlier or wait for them to expire"
	refuseTotal      = "the coordinator has too many logins pending; try again in a few minutes"
	refuseClosed     = "coordinator is shutting down"
)

// maxPendingHostname bounds the hostname kept for the login page and the
// new node (a DNS name is at most 253 bytes).
const maxPendingHostname = 253

// pendingAuth is a node waiting for its user to log in on the AuthURL. It
// keeps only what finishing the login needs, not the register request:
// the client sends its full Hostinfo again on its first map request.
type pendingAuth struct {
	id         string
	machineKey key.MachinePublic
	source     netip.Addr
	nodeKey    key.NodePublic
	hostname   string
	os         string
	ephemeral  bool
	version    tailcfg.CapabilityVersion
	old        *Node // set for a key rotation (an immutable registry value)

	done  chan struct{} // closed once approved; resp is then valid
	gone  chan struct{} // closed when the entry expired or the server closed
	timer *time.Timer

	// Guarded by pendingLogins.mu.
	resp      tailcfg.RegisterResponse
	completed bool
}

// registerRequest is what createNode needs from the original request.
func (p *pendingAuth) registerRequest() *tailcfg.RegisterRequest {
	return &tailcfg.RegisterRequest{Version: p.version, NodeKey: p.nodeKey, Ephemeral: p.ephemeral,
		Hostinfo: &tailcfg.Hostinfo{Hostname: p.hostname, OS: p.os}}
}

type pendingKey struct {
	machine key.MachinePublic
	node    key.NodePublic
}

// pendingLogins owns the pending interactive logins and their counts.
type pendingLogins struct {
	limits PendingLoginLimits

	mu        sync.Mutex // guards everything below and each entry's resp, completed
	byID      map[string]*pendingAuth
	byNode    map[pendingKey]*pendingAuth
	byMachine map[key.MachinePublic]int
	bySource  map[netip.Addr]int
	closed    bool
}

func newPendingLogins(l PendingLoginLimits) *pendingLogins {
	return &pendingLogins{
		limits:    l.withDefaults(),
		byID:      map[string]*pendingAuth{},
		byNode:    map[pendingKey]*pendingAuth{},
		byMachine: map[key.MachinePublic]int{},
		bySource:  map[netip.Addr]int{},
	}
}

// add stores p, or returns the entry already pending for the same machine
// and node key (a client that asks again gets the same link). Over a cap
// it stores nothing and returns the refusal to show.
func (pl *pendingLogins) add(p *pendingAuth) (*pendingAuth, string) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	switch k := (pendingKey{p.machineKey, p.nodeKey}); {
	case pl.closed:
		return nil, refuseClosed
	case pl.byNode[k] != nil:
		return pl.byNode[k], ""
	case pl.byMachine[p.machineKey] >= pl.limits.PerMachine:
		return nil, refusePerMachine
	case pl.bySource[p.source] >= pl.limits.PerSource:
		return nil, refusePerSource
	case len(pl.byID) >= pl.limits.Total:
		return nil, refuseTotal
	}
	p.done, p.gone = make(chan struct{}), make(chan struct{})
	pl.byID[p.id] = p
	pl.byNode[pendingKey{p.machineKey, p.nodeKey}] = p
	pl.byMachine[p.machineKey]++
	pl.bySource[p.source]++
	p.timer = time.AfterFunc(pl.limits.TTL, func() { pl.remove(p) })
	return p, ""
}

// get returns the pending login with that ID, or nil.
func (pl *pendingLogins) get(id string) *pendingAuth {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.byID[id]
}

// remove forgets p (expired, or its login finished).
func (pl *pendingLogins) remove(p *pendingAuth) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.removeLocked(p)
}

func (pl *pendingLogins) removeLocked(p *pendingAuth) {
	if pl.byID[p.id] != p {
		return
	}
	p.timer.Stop()
	close(p.gone)
	delete(pl.byID, p.id)
	delete(pl.byNode, pendingKey{p.machineKey, p.nodeKey})
	decrement(pl.byMachine, p.machineKey)
	decrement(pl.bySource, p.source)
}

func decrement[K comparable](m map[K]int, k K) {
	if m[k]--; m[k] <= 0 {
		delete(m, k)
	}
}

// claim marks p as being approved; false if it already is (or was).
func (pl *pendingLogins) claim(p *pendingAuth) bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if p.completed {
		return false
	}
	p.completed = true
	return true
}

// unclaim undoes claim after a failed approval.
func (pl *pendingLogins) unclaim(p *pendingAuth) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	p.completed = false
}

// finish records the answer for p's waiting request and wakes it.
func (pl *pendingLogins) finish(p *pendingAuth, resp tailcfg.RegisterResponse) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	p.resp = resp
	close(p.done)
}

// response returns p's answer once done is closed.
func (pl *pendingLogins) response(p *pendingAuth) tailcfg.RegisterResponse {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return p.resp
}

// count returns the number of pending logins.
func (pl *pendingLogins) count() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.byID)
}

// close forgets every pending login and refuses new ones.
func (pl *pendingLogins) close() {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.closed = true
	for _, p := range pl.byID {
		pl.removeLocked(p)
	}
}
