package webterm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/devmesh/devmesh/internal/termproto"
)

// DataChannelLabel is the label of the terminal's data channel.
const DataChannelLabel = "devmesh-terminal"

// gatherWait bounds the wait for ICE candidates before answering.
const gatherWait = time.Second

// openTimeout bounds how long a peer connection may take to open its
// data channel after the answer.
const openTimeout = 30 * time.Second

// rtcServer answers offers with peer connections whose data channel
// attaches to the ticket's session. It owns the peer connections.
type rtcServer struct {
	api *webrtc.API
	mgr *Manager
	log *slog.Logger

	mu     sync.Mutex
	pcs    map[*webrtc.PeerConnection]struct{} // guarded by mu
	closed bool                                // guarded by mu
}

func newRTCServer(m *Manager, log *slog.Logger) *rtcServer {
	var se webrtc.SettingEngine
	// Same-host browsers and tests reach the agent on loopback.
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	return &rtcServer{api: webrtc.NewAPI(webrtc.WithSettingEngine(se)), mgr: m, log: log,
		pcs: map[*webrtc.PeerConnection]struct{}{}}
}

// answer makes a peer connection for offer and returns its answer, with
// every ICE candidate gathered (no trickle: signalling is one request).
func (r *rtcServer) answer(ctx context.Context, t termproto.Ticket, offer string, stun []string) (string, error) {
	cfg := webrtc.Configuration{}
	if len(stun) > 0 {
		cfg.ICEServers = []webrtc.ICEServer{{URLs: stun}}
	}
	pc, err := r.api.NewPeerConnection(cfg)
	if err != nil {
		return "", fmt.Errorf("new peer connection: %w", err)
	}
	if !r.track(pc) {
		pc.Close()
		return "", errClosed
	}
	ok := false
	defer func() {
		if !ok {
			r.drop(pc)
		}
	}()
	r.wire(pc, t)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("the offer: %w", err)
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("create the answer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return "", fmt.Errorf("set the answer: %w", err)
	}
	// Host candidates come at once; a server-reflexive one takes a STUN
	// round trip, or until a timeout on an interface that cannot reach
	// the STUN server. Answer with what is there after gatherWait.
	gt := time.NewTimer(gatherWait)
	defer gt.Stop()
	select {
	case <-gathered:
	case <-gt.C:
	case <-ctx.Done():
		return "", errors.New("ICE gathering timed out")
	}
	ok = true
	time.AfterFunc(openTimeout, func() {
		if pc.SCTP().State() != webrtc.SCTPTransportStateConnected {
			r.drop(pc)
		}
	})
	return pc.LocalDescription().SDP, nil
}

// wire attaches the first data channel with our label to the ticket's
// session and closes the peer connection when it fails or the channel
// closes.
func (r *rtcServer) wire(pc *webrtc.PeerConnection, t termproto.Ticket) {
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			go r.drop(pc)
		}
	})
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		first := false
		once.Do(func() { first = true })
		if !first || dc.Label() != DataChannelLabel {
			dc.Close()
			return
		}
		tr := &dcTransport{dc: dc, open: make(chan struct{})}
		var mu sync.Mutex
		var att *Attachment
		dc.OnOpen(func() {
			a, err := r.mgr.Attach(t, tr, termproto.PathDirect)
			if err != nil {
				r.log.Warn("terminal attach refused", "err", err)
				_ = dc.Send(termproto.Frame(termproto.Error, []byte(err.Error())))
				go r.drop(pc)
				return
			}
			mu.Lock()
			att = a
			mu.Unlock()
			close(tr.open)
		})
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			mu.Lock()
			a := att
			mu.Unlock()
			if a != nil && !m.IsString {
				a.Handle(m.Data)
			}
		})
		dc.OnClose(func() {
			mu.Lock()
			a := att
			mu.Unlock()
			if a != nil {
				a.Detach()
			}
			go r.drop(pc)
		})
	})
}

func (r *rtcServer) track(pc *webrtc.PeerConnection) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.pcs[pc] = struct{}{}
	return true
}

// drop closes pc and forgets it.
func (r *rtcServer) drop(pc *webrtc.PeerConnection) {
	r.mu.Lock()
	_, ok := r.pcs[pc]
	delete(r.pcs, pc)
	r.mu.Unlock()
	if ok {
		_ = pc.Close()
	}
}

// close closes every peer connection.
func (r *rtcServer) close() {
	r.mu.Lock()
	r.closed = true
	all := make([]*webrtc.PeerConnection, 0, len(r.pcs))
	for pc := range r.pcs {
		all = append(all, pc)
	}
	clear(r.pcs)
	r.mu.Unlock()
	for _, pc := range all {
		_ = pc.Close()
	}
}

// dcTransport sends frames on a data channel once it is open.
type dcTransport struct {
	dc   *webrtc.DataChannel
	open chan struct{}
}

func (t *dcTransport) Send(f []byte) error {
	select {
	case <-t.open:
	case <-time.After(openTimeout):
		return errors.New("the data channel did not open")
	}
	return t.dc.Send(f)
}

func (t *dcTransport) Close() error { return t.dc.Close() }
