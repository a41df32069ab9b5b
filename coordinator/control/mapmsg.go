package control

import (
	"encoding/binary"
	"encoding/json"
	"hash/maphash"
	"slices"
	"sync"

	"tailscale.com/tailcfg"
	"tailscale.com/util/zstdframe"
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

// encode returns the message's JSON: the response with the peers
// spliced in. JSON object key order is free, so it decodes to the same
// MapResponse as json.Marshal of the whole.
func (m *mapMsg) encode() ([]byte, error) {
	head, err := m.head()
	if err != nil || len(m.peers) == 0 {
		return head, err
	}
	return m.appendPeers(head), nil
}

// head encodes the peers that missed the cache (and caches them) and
// the rest of the response. With peers, it returns the JSON up to the
// peer list (`{...,"PeersChanged":[`, which appendPeers completes);
// without, the whole message.
func (m *mapMsg) head() ([]byte, error) {
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
	resp := m.resp
	if len(resp.PacketFilters) > 0 {
		r := *resp
		r.PacketFilters = nil // spliced in by appendFilters
		resp = &r
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return nil, err
	}
	if resp != m.resp {
		b = b[:len(b)-1] // without the closing brace
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, `"PacketFilters":`...)
		if b, err = appendFilters(b, m.resp.PacketFilters); err != nil {
			return nil, err
		}
		b = append(b, '}')
	}
	if len(m.peers) == 0 {
		// No peers: the field is omitted, as json.Marshal omits an
		// empty Peers (the client treats both alike).
		return b, nil
	}
	field := `"PeersChanged":[`
	if m.full {
		field = `"Peers":[`
	}
	b = b[:len(b)-1] // without the closing brace
	if len(b) > 1 {
		b = append(b, ',')
	}
	return append(b, field...), nil
}

// appendPeers appends the peer list and the closing brackets.
func (m *mapMsg) appendPeers(b []byte) []byte {
	size := len(b) + 2 + len(m.peers)
	for _, p := range m.peers {
		size += len(p.enc)
	}
	b = slices.Grow(b, size-len(b))
	for i, p := range m.peers {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, p.enc...)
	}
	return append(b, "]}"...)
}

// wire returns the message as it goes on the stream: a little-endian
// uint32 length, then the JSON, as zstd frames when compress is set.
//
// Compression is most of the cost of a message, and during a burst of
// registrations every stream carries the same new peers. So the peer
// list of a delta is compressed once, in a frame of its own shared by
// every message with the same peers (see sharedFrames), and the rest,
// which differs per viewer (its packet filter, ControlTime) but is small,
// goes in a stored (uncompressed) frame. A client decodes concatenated
// zstd frames as one payload (RFC 8878 section 3.1; tailscaled and
// tsp both do).
func (m *mapMsg) wire(compress bool) ([]byte, error) {
	head, err := m.head()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 4, 4+len(head)+64)
	switch {
	case !compress:
		out = append(out, head...)
		if len(m.peers) > 0 {
			out = m.appendPeers(out)
		}
	case len(m.peers) == 0 || m.full:
		// A full map's peers are its own (nobody else's list is the
		// same); compressing it whole compresses best.
		if len(m.peers) > 0 {
			head = m.appendPeers(head)
		}
		out = appendSmallFrame(out, head)
	default:
		out = appendSmallFrame(out, head)
		out = append(out, m.cache.frames.get(m.epoch, m.peers)...)
	}
	binary.LittleEndian.PutUint32(out, uint32(len(out)-4))
	return out, nil
}

// storedFrameMax is the largest JSON sent in a stored zstd frame rather
// than compressed: below it, compression costs more CPU than the bytes
// it saves are worth on any link a client has.
const storedFrameMax = 4 << 10

// appendSmallFrame appends b as one zstd frame: stored when small,
// compressed otherwise.
func appendSmallFrame(dst, b []byte) []byte {
	if len(b) <= storedFrameMax {
		return appendStoredFrame(dst, b)
	}
	return zstdframe.AppendEncode(dst, b, zstdframe.FastestCompression)
}

// appendStoredFrame appends b as a zstd frame of raw (stored) blocks
// (RFC 8878): the magic number, a single-segment frame header with a
// 4-byte content size, and blocks of at most 128 KiB.
func appendStoredFrame(dst, b []byte) []byte {
	const maxBlock = 128 << 10
	dst = binary.LittleEndian.AppendUint32(dst, 0xFD2FB528)
	// Frame_Header_Descriptor: Frame_Content_Size_flag 2 (4 bytes),
	// Single_Segment_flag set; no checksum, no dictionary.
	dst = append(dst, 0b1010_0000)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b)))
	for {
		n := min(len(b), maxBlock)
		last := n == len(b)
		// Block_Header: Last_Block, Block_Type 0 (raw), Block_Size.
		h := uint32(n) << 3
		if last {
			h |= 1
		}
		dst = append(dst, byte(h), byte(h>>8), byte(h>>16))
		dst = append(dst, b[:n]...)
		if b = b[n:]; last {
			return dst
		}
	}
}

// sharedFrames holds the compressed peer lists of recent delta
// messages, so that the streams that carry the same peers (the same
// node versions, rendered alike) compress them once. A list is
// compressed by the first stream that needs it while the others wait
// for it, and the newest maxSharedFrames lists are kept. Entries hold
// their nodes, so a version's address is never reused while it is a key.
type sharedFrames struct {
	mu     sync.Mutex
	seed   maphash.Seed
	byHash map[uint64]*sharedFrame
	ring   [maxSharedFrames]uint64 // insertion order, to evict the oldest
	next   int
}

const (
	maxSharedFrames = 256
	// maxSharedPeers bounds the lists kept: a larger one is not a
	// burst's common change but a (rare) reconnect, not worth the memory.
	maxSharedPeers = 512
)

type sharedFrame struct {
	epoch uint64
	keys  []peerKey
	once  sync.Once
	frame []byte // the peer list, `p1,p2,...]}`, as a zstd frame
}

func newSharedFrames() *sharedFrames {
	return &sharedFrames{seed: maphash.MakeSeed(), byHash: map[uint64]*sharedFrame{}}
}

// get returns the zstd frame of the peer list of ps (encoded, looked up
// in epoch) followed by the message's closing brackets.
func (f *sharedFrames) get(epoch uint64, ps []peerJSON) []byte {
	compress := func() []byte {
		var b []byte
		for i, p := range ps {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, p.enc...)
		}
		return zstdframe.AppendEncode(nil, append(b, "]}"...), zstdframe.FastestCompression)
	}
	if len(ps) > maxSharedPeers {
		return compress()
	}
	e := f.entry(epoch, ps)
	if e == nil {
		return compress()
	}
	e.once.Do(func() { e.frame = compress() })
	return e.frame
}

// entry finds or makes the entry for the list; nil on a hash collision
// with another list.
func (f *sharedFrames) entry(epoch uint64, ps []peerJSON) *sharedFrame {
	var h maphash.Hash
	h.SetSeed(f.seed)
	maphash.WriteComparable(&h, epoch)
	for _, p := range ps {
		maphash.WriteComparable(&h, p.key)
	}
	sum := h.Sum64()
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.byHash[sum]; e != nil {
		if e.epoch != epoch || len(e.keys) != len(ps) {
			return nil
		}
		for i := range ps {
			if e.keys[i] != ps[i].key {
				return nil
			}
		}
		return e
	}
	e := &sharedFrame{epoch: epoch, keys: make([]peerKey, len(ps))}
	for i := range ps {
		e.keys[i] = ps[i].key
	}
	delete(f.byHash, f.ring[f.next])
	f.ring[f.next] = sum
	f.next = (f.next + 1) % maxSharedFrames
	f.byHash[sum] = e
	return e
}

// reset forgets every entry (the cache's encodings were reset).
func (f *sharedFrames) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.byHash)
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
	// frames shares compressed peer lists among streams.
	frames *sharedFrames
}

type peerEntry struct {
	node *Node
	enc  [numVariants][]byte
}

func newPeerCache() *peerCache {
	return &peerCache{nodes: map[tailcfg.NodeID]*peerEntry{}, frames: newSharedFrames()}
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
	c.frames.reset()
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
