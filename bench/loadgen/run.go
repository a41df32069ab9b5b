package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"tailscale.com/control/ts2021"
	"tailscale.com/control/tsp"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// Config says what load to put on a control server.
type Config struct {
	// URL is the control server's base URL (http://host:port).
	URL string
	// AuthKey is a reusable pre-auth key every simulated node registers
	// with. All nodes belong to its user: the "one user, full mesh" shape.
	AuthKey string
	// Nodes is how many nodes to register (N).
	Nodes int
	// Concurrency bounds the registrations in flight.
	Concurrency int
	// Rounds is how many endpoint changes to time, one node at a time.
	Rounds int
	// DeliveryTimeout bounds the wait for one change to reach every peer.
	DeliveryTimeout time.Duration
	// RoundGap is the pause after a change has reached every peer
	// before the next one (default 250ms), so that each is timed as the
	// isolated change it stands for: a server may hold a change that
	// follows another closely, to send both in one message.
	RoundGap time.Duration
	// Sample, if set, is called between phases so the caller can read the
	// server's CPU time and memory (see ProcStat).
	Sample func(phase string)
	// Progress, if set, receives a line now and then during long phases.
	Progress func(format string, args ...any)
}

// Result is what one run measured.
type Result struct {
	Nodes          int           `json:"nodes"`
	Registered     int           `json:"registered"`
	RegisterTime   time.Duration `json:"register_ns"`
	RegisterRate   float64       `json:"register_per_s"`   // over the whole phase
	SustainedRate  float64       `json:"sustained_per_s"`  // over the second half of the phase
	FirstMapP50    time.Duration `json:"first_map_p50_ns"` // register start to first map
	FirstMapP99    time.Duration `json:"first_map_p99_ns"`
	FullMeshTime   time.Duration `json:"full_mesh_ns"`    // until every node saw N-1 peers (0: never)
	MeshIncomplete int           `json:"mesh_incomplete"` // nodes that did not, by DeliveryTimeout
	FanoutP50      time.Duration `json:"fanout_p50_ns"`
	FanoutP99      time.Duration `json:"fanout_p99_ns"`
	FanoutMax      time.Duration `json:"fanout_max_ns"`
	Rounds         int           `json:"rounds"`
	Deliveries     int           `json:"deliveries"`
	Missing        int           `json:"missing"`
}

// sim is one simulated node: a machine key, a node key, and a map stream
// read by its own goroutine.
type sim struct {
	idx   int
	c     *tsp.Client
	node  key.NodePrivate
	disco key.DiscoPublic
	ms    *tsp.MapSession // a lite session: its Noise connection carries requests
	st    *mapStream

	mu    sync.Mutex
	peers map[tailcfg.NodeID]bool
	seen  map[int]time.Time // round -> when this node first saw that round's endpoint
	full  chan struct{}     // closed when peers reaches want
	want  int
}

// roundPort encodes a round in an endpoint's port, so that a reader can
// tell which change a delta carries without any shared state.
func roundPort(r int) uint16 { return uint16(20000 + r) }

func (s *sim) observe(resp *lightResponse, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	note := func(eps []netip.AddrPort) {
		for _, ep := range eps {
			if p := int(ep.Port()); p >= 20000 && p < 20000+60000 {
				if _, ok := s.seen[p-20000]; !ok {
					s.seen[p-20000] = now
				}
			}
		}
	}
	if resp.Peers != nil {
		s.peers = make(map[tailcfg.NodeID]bool, len(resp.Peers))
		for _, p := range resp.Peers {
			s.peers[p.ID] = true
			note(p.Endpoints)
		}
	}
	for _, p := range resp.PeersChanged {
		s.peers[p.ID] = true
		note(p.Endpoints)
	}
	for _, id := range resp.PeersRemoved {
		delete(s.peers, id)
	}
	for _, p := range resp.PeersChangedPatch {
		note(p.Endpoints)
	}
	if s.full != nil && len(s.peers) >= s.want {
		close(s.full)
		s.full = nil
	}
}

func (s *sim) peerCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.peers)
}

func (s *sim) seenAt(round int) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.seen[round]
	return t, ok
}

// Run registers cfg.Nodes nodes, streams their maps, then times
// cfg.Rounds endpoint changes reaching every peer. It closes every
// connection it opened before it returns.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Nodes < 2 {
		return Result{}, errors.New("loadgen: need at least 2 nodes")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 32
	}
	if cfg.DeliveryTimeout <= 0 {
		cfg.DeliveryTimeout = 30 * time.Second
	}
	if cfg.RoundGap <= 0 {
		cfg.RoundGap = 250 * time.Millisecond
	}
	sample := func(p string) {
		if cfg.Sample != nil {
			cfg.Sample(p)
		}
	}
	logf := func(f string, a ...any) {
		if cfg.Progress != nil {
			cfg.Progress(f, a...)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	res := Result{Nodes: cfg.Nodes, Rounds: cfg.Rounds}
	sims := make([]*sim, cfg.Nodes)
	firstMap := make([]time.Duration, cfg.Nodes)
	doneAt := make([]time.Time, cfg.Nodes)
	var readers sync.WaitGroup
	defer func() {
		for _, s := range sims {
			if s == nil {
				continue
			}
			if s.st != nil {
				s.st.close()
			}
			if s.ms != nil {
				s.ms.Close()
			}
			s.c.Close()
		}
		readers.Wait()
	}()

	sample("idle")
	var registered atomic.Int64
	var lastMsg atomic.Int64 // unix nanoseconds of the last message any node read
	start := time.Now()
	// Not errgroup.WithContext: its context ends when Wait returns, and
	// the map streams must outlive the registration phase.
	var g errgroup.Group
	g.SetLimit(cfg.Concurrency)
	for i := range sims {
		g.Go(func() error {
			t0 := time.Now()
			s, err := register(ctx, cfg, i)
			if err != nil {
				return fmt.Errorf("node %d: %w", i, err)
			}
			sims[i] = s
			var resp lightResponse
			if err := s.st.next(&resp); err != nil {
				return fmt.Errorf("node %d: first map: %w", i, err)
			}
			now := time.Now()
			firstMap[i], doneAt[i] = now.Sub(t0), now
			s.observe(&resp, now)
			readers.Add(1)
			go func() {
				defer readers.Done()
				for {
					if err := s.st.next(&resp); err != nil {
						return
					}
					now := time.Now()
					lastMsg.Store(now.UnixNano())
					s.observe(&resp, now)
				}
			}()
			if n := registered.Add(1); n%500 == 0 {
				logf("registered %d/%d (%.0f/s)", n, cfg.Nodes, float64(n)/time.Since(start).Seconds())
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		res.Registered = int(registered.Load())
		return res, err
	}
	res.Registered = cfg.Nodes
	res.RegisterTime = time.Since(start)
	res.RegisterRate = float64(cfg.Nodes) / res.RegisterTime.Seconds()
	sorted := append([]time.Time(nil), doneAt...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a].Before(sorted[b]) })
	half := sorted[len(sorted)/2]
	if d := sorted[len(sorted)-1].Sub(half); d > 0 {
		res.SustainedRate = float64(len(sorted)-len(sorted)/2) / d.Seconds()
	}
	res.FirstMapP50, res.FirstMapP99 = pct(firstMap, 50), pct(firstMap, 99)
	sample("registered")

	// Every node should come to see every other node; those that do not
	// by the deadline are counted, and the fan-out phase goes on (their
	// deliveries will be missing).
	meshDeadline := time.NewTimer(cfg.DeliveryTimeout)
	defer meshDeadline.Stop()
	expired := false
	for _, s := range sims {
		s.mu.Lock()
		ch := s.full
		s.mu.Unlock()
		if ch == nil {
			continue
		}
		if !expired {
			select {
			case <-ch:
				continue
			case <-meshDeadline.C:
				expired = true
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
		if s.peerCount() < cfg.Nodes-1 {
			res.MeshIncomplete++
		}
	}
	if res.MeshIncomplete == 0 {
		res.FullMeshTime = time.Since(start)
	}
	logf("meshed: %d of %d nodes see every peer", cfg.Nodes-res.MeshIncomplete, cfg.Nodes)
	// Time changes on a settled mesh: the registrations' last messages
	// (online and endpoint patches) may still be on their way.
	for settle := time.Now().Add(10 * time.Second); time.Now().Before(settle); time.Sleep(50 * time.Millisecond) {
		if time.Since(time.Unix(0, lastMsg.Load())) > 500*time.Millisecond {
			break
		}
	}
	sample("meshed")

	var lat []time.Duration
	for r := 0; r < cfg.Rounds; r++ {
		if r > 0 {
			time.Sleep(cfg.RoundGap)
		}
		changer := sims[(r*7919)%len(sims)]
		ep := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), roundPort(r))
		t0 := time.Now()
		if err := changer.sendEndpoints(ctx, ep); err != nil {
			return res, fmt.Errorf("round %d: send update: %w", r, err)
		}
		deadline := t0.Add(cfg.DeliveryTimeout)
		for _, s := range sims {
			if s == changer {
				continue
			}
			for {
				if at, ok := s.seenAt(r); ok {
					lat = append(lat, at.Sub(t0))
					res.Deliveries++
					break
				}
				if time.Now().After(deadline) {
					res.Missing++
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	sample("fanout")
	if len(lat) > 0 {
		res.FanoutP50, res.FanoutP99, res.FanoutMax = pct(lat, 50), pct(lat, 99), pct(lat, 100)
	}
	return res, nil
}

// sendEndpoints reports new endpoints in a lite (non-streaming, OmitPeers)
// map request over the node's own Noise connection, as tailscaled does
// when its endpoints change.
func (s *sim) sendEndpoints(ctx context.Context, eps ...netip.AddrPort) error {
	body, err := json.Marshal(tailcfg.MapRequest{
		Version:   tailcfg.CurrentCapabilityVersion,
		NodeKey:   s.node.Public(),
		DiscoKey:  s.disco,
		Hostinfo:  hostinfo(s.idx),
		Endpoints: eps,
		OmitPeers: true,
		Compress:  "zstd",
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", "https://unused/machine/map", bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts2021.AddLBHeader(req, s.node.Public())
	res, err := s.ms.NoiseRoundTrip(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 200))
		return fmt.Errorf("http %d: %s", res.StatusCode, bytes.TrimSpace(msg))
	}
	_, err = io.Copy(io.Discard, res.Body)
	return err
}

func hostinfo(i int) *tailcfg.Hostinfo {
	return &tailcfg.Hostinfo{Hostname: fmt.Sprintf("load-%d", i), OS: "linux"}
}

// register makes one node: its own machine key (so its own Noise
// connection, as a real client), registration with the auth key, and a
// streaming map session.
func register(ctx context.Context, cfg Config, i int) (*sim, error) {
	c, err := tsp.NewClient(tsp.ClientOpts{ServerURL: cfg.URL, MachineKey: key.NewMachine()})
	if err != nil {
		return nil, err
	}
	s := &sim{idx: i, c: c, node: key.NewNode(), disco: key.NewDisco().Public(), seen: map[int]time.Time{},
		peers: map[tailcfg.NodeID]bool{}, full: make(chan struct{}), want: cfg.Nodes - 1}
	rr, err := c.Register(ctx, tsp.RegisterOpts{NodeKey: s.node, AuthKey: cfg.AuthKey, Hostinfo: hostinfo(i)})
	if err == nil && rr.Error != "" {
		err = errors.New(rr.Error)
	}
	if err == nil && rr.AuthURL != "" {
		err = errors.New("server wants interactive login: the auth key was not accepted")
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("register: %w", err)
	}
	// A lite map request opens the Noise connection the stream and the
	// updates then share (tsp exports its round trip on a map session).
	s.ms, err = c.Map(ctx, tsp.MapOpts{NodeKey: s.node, OmitPeers: true, Hostinfo: hostinfo(i)})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("map: %w", err)
	}
	s.st, err = openMapStream(ctx, s.ms.NoiseRoundTrip, tailcfg.MapRequest{
		Version: tailcfg.CurrentCapabilityVersion, NodeKey: s.node.Public(), DiscoKey: s.disco, Hostinfo: hostinfo(i)})
	if err != nil {
		s.ms.Close()
		c.Close()
		return nil, fmt.Errorf("map: %w", err)
	}
	// Like tailscaled, report endpoints in a separate lite request: a
	// streaming request from a current client is read-only.
	// A real client retries a failed update; so does the load (a busy
	// server may time out a new connection's dial).
	var err2 error
	for try := 0; try < 3; try++ {
		if err2 = s.sendEndpoints(ctx, netip.AddrPortFrom(netip.MustParseAddr("198.18.0.2"), 1000)); err2 == nil {
			break
		}
		time.Sleep(time.Duration(try+1) * 200 * time.Millisecond)
	}
	if err := err2; err != nil {
		s.st.close()
		s.ms.Close()
		c.Close()
		return nil, fmt.Errorf("endpoints: %w", err)
	}
	return s, nil
}

// pct returns the p-th percentile (nearest rank) of ds; it sorts ds.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
	i := (len(ds)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return ds[i-1]
}
