package control

import (
	"encoding/json"
	"sync"

	"tailscale.com/tailcfg"
)

// A change to one node goes to every node that sees it, and the peer's
// tailcfg.Node is most of each of those messages. So a map message keeps
// its peers apart from the rest of the response: each peer's JSON is
// encoded once per node version (and rendering variant), cached, and
// spliced into every message that carries it.

// peerVariant is what, besides the node version, a peer's rendering
// depends on: see tailNode.
type peerVariant uint8

const (
	variantLegacyDERP peerVariant = 1 << iota // viewer.Cap < 111 and the peer has a home DERP
	variantExpired                            // the peer's key has expired
	numVariants       = 1 << iota
)

// peerKey names one encoding of a peer: a *Node is one version of a node
// (the index replaces the pointer on every change).
type peerKey struct {
	node    *Node
	variant peerVariant
}

func (ix *index) peerKey(p, viewer *Node, env *mapEnv) peerKey {
	var v peerVariant
	if wantsLegacyDERP(p, viewer) {
		v |= variantLegacyDERP
	}
	if p.Expired(env.now()) {
		v |= variantExpired
	}
	return peerKey{node: p, variant: v}
}

// peerJSON is one peer of a message: its cached encoding, or, on a miss,
// the node rendered under the registry lock, to be encoded outside it.
type peerJSON struct {
	key  peerKey
	enc  []byte
	node *tailcfg.Node
}

// mapMsg is a map response to send. resp has no Peers or PeersChanged:
// peers go in as Peers when full (the complete list), else as
// PeersChanged.
type mapMsg struct {
	resp  *tailcfg.MapResponse
	full  bool
	peers []peerJSON
	cache *peerCache
	epoch uint64 // the cache epoch the peers were looked up in
}

// encode returns the message's JSON. It encodes the peers that missed the
// cache (and caches them), marshals the rest of the response and splices
// the peers in. JSON object key order is free, so the result decodes to
// the same MapResponse as json.Marshal of the whole.
func (m *mapMsg) encode() ([]byte, error) {
	var fresh []peerJSON
	for i := range m.peers {
		p := &m.peers[i]
		if p.enc != nil {
			continue
		}
		b, err := json.Marshal(p.node)
		if err != nil {
			return nil, err
		}
		p.enc = b
		fresh = append(fresh, *p)
	}
	if len(fresh) > 0 {
		m.cache.store(m.epoch, fresh)
	}
	b, err := json.Marshal(m.resp)
	if err != nil || len(m.peers) == 0 {
		// No peers: the field is omitted, as json.Marshal omits an
		// empty Peers (the client treats both alike).
		return b, err
	}
	field := `"PeersChanged":[`
	if m.full {
		field = `"Peers":[`
	}
	size := len(b) + len(field) + 2 + len(m.peers)
	for _, p := range m.peers {
		size += len(p.enc)
	}
	out := make([]byte, 0, size)
	out = append(out, b[:len(b)-1]...) // without the closing brace
	if len(b) > 2 {
		out = append(out, ',')
	}
	out = append(out, field...)
	for i, p := range m.peers {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, p.enc...)
	}
	return append(out, "]}"...), nil
}

// peerCache holds the JSON encodings of the live node versions. Entries
// follow the index: a version's entry is created when it is inserted and
// dropped when it is replaced or removed, so the cache never holds more
// than the live nodes and never serves an old version. Its methods are
// safe for concurrent use; the index calls track and untrack under the
// registry lock, streams store encodings outside it.
type peerCache struct {
	mu sync.Mutex
	// epoch advances on reset (a change of users, which names depend
	// on); encodings rendered in an older epoch are not stored.
	epoch uint64
	nodes map[tailcfg.NodeID]*peerEntry
}

type peerEntry struct {
	node *Node
	enc  [numVariants][]byte
}

func newPeerCache() *peerCache {
	return &peerCache{nodes: map[tailcfg.NodeID]*peerEntry{}}
}

// track starts an (empty) entry for a version the index inserted.
func (c *peerCache) track(n *Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes[n.ID] = &peerEntry{node: n}
}

// untrack drops the entry of a version the index deleted.
func (c *peerCache) untrack(n *Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.nodes[n.ID]; e != nil && e.node == n {
		delete(c.nodes, n.ID)
	}
}

// reset forgets every encoding: what they were rendered from changed.
func (c *peerCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for _, e := range c.nodes {
		e.enc = [numVariants][]byte{}
	}
}

// lookup fills in the cached encodings of ps and returns the epoch to
// store the missing ones in.
func (c *peerCache) lookup(ps []peerJSON) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range ps {
		k := ps[i].key
		if e := c.nodes[k.node.ID]; e != nil && e.node == k.node {
			ps[i].enc = e.enc[k.variant]
		}
	}
	return c.epoch
}

// store caches encodings made from versions looked up in epoch, unless
// the cache was reset since or the version is no longer live.
func (c *peerCache) store(epoch uint64, ps []peerJSON) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return
	}
	for _, p := range ps {
		if e := c.nodes[p.key.node.ID]; e != nil && e.node == p.key.node {
			e.enc[p.key.variant] = p.enc
		}
	}
}

// len returns the number of node entries (tests).
func (c *peerCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.nodes)
}

// peerMsg turns a response and its peers (sorted by ID) into a message
// for viewer: cached encodings where there are, rendered nodes for the
// rest. It runs under the registry lock.
func (ix *index) peerMsg(resp *tailcfg.MapResponse, full bool, peers []*Node, viewer *Node, env *mapEnv) *mapMsg {
	m := &mapMsg{resp: resp, full: full, peers: make([]peerJSON, len(peers)), cache: ix.enc}
	for i, p := range peers {
		m.peers[i].key = ix.peerKey(p, viewer, env)
	}
	m.epoch = ix.enc.lookup(m.peers)
	for i := range m.peers {
		if m.peers[i].enc == nil {
			m.peers[i].node = ix.tailNode(peers[i], viewer, env)
		}
	}
	return m
}
