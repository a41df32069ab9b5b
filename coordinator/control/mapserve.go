package control

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"tailscale.com/tailcfg"
	"tailscale.com/types/key"

	"github.com/devmesh/devmesh/coordinator/metrics"
)

// keepAlive is a keepalive MapResponse as it goes on the wire,
// uncompressed and compressed.
var keepAlive = func() (wire [2][]byte) {
	msg := []byte(`{"KeepAlive":true}`)
	wire[0] = binary.LittleEndian.AppendUint32(nil, uint32(len(msg)))
	wire[0] = append(wire[0], msg...)
	z := appendStoredFrame(nil, msg)
	wire[1] = binary.LittleEndian.AppendUint32(nil, uint32(len(z)))
	wire[1] = append(wire[1], z...)
	return wire
}()

func keepAliveWire(compress bool) []byte {
	if compress {
		return keepAlive[1]
	}
	return keepAlive[0]
}

// serveMap answers POST /machine/map: a streaming long poll, a lite
// update (OmitPeers, answered with an empty 200), or a one-shot map.
func (s *Server) serveMap(w http.ResponseWriter, r *http.Request, mk key.MachinePublic) {
	var req tailcfg.MapRequest
	if err := decodeBody(r, &req); err != nil {
		http.Error(w, "malformed map request", http.StatusBadRequest)
		return
	}
	n := s.reg.NodeByKey(req.NodeKey)
	if n == nil {
		s.cfg.Metrics.Refused("map_unregistered")
		http.Error(w, "node not registered", http.StatusUnauthorized)
		return
	}
	if n.MachineKey != mk {
		http.Error(w, "node key is registered to another machine", http.StatusForbidden)
		return
	}
	if s.afterMapLookup != nil {
		s.afterMapLookup(n.ID)
	}
	if !req.ReadOnly && !s.applyMapRequest(r.Context(), n.ID, &req) {
		http.Error(w, "node not registered", http.StatusUnauthorized)
		return
	}
	compress := req.Compress == "zstd"
	if !req.Stream {
		if req.OmitPeers {
			w.WriteHeader(http.StatusOK)
			return
		}
		m, err := s.reg.FullMap(n.ID)
		if err != nil {
			http.Error(w, "node not registered", http.StatusUnauthorized)
			return
		}
		b, err := m.wire(compress)
		if err != nil {
			http.Error(w, "encoding the map failed", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
		if n, err := writeMapMsg(w, b); err == nil {
			s.cfg.Metrics.MapSent(metrics.MapFull, n, time.Time{})
		}
		return
	}
	s.streamMap(r.Context(), w, n.ID, compress)
}

func (s *Server) streamMap(ctx context.Context, w http.ResponseWriter, id tailcfg.NodeID, compress bool) {
	st, first, err := s.reg.OpenStream(id)
	if errors.Is(err, errClosed) {
		http.Error(w, "coordinator is shutting down", http.StatusServiceUnavailable)
		return
	}
	if err != nil {
		http.Error(w, "node not registered", http.StatusUnauthorized)
		return
	}
	defer st.Close()
	s.log.Debug("map stream opened", "node", id)
	if st.wentOnline {
		s.log.Debug("node online", "node", id)
	}
	b, err := first.wire(compress)
	if err != nil {
		http.Error(w, "encoding the map failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	n, err := writeMapMsg(w, b)
	if err != nil {
		s.log.Debug("map stream closed", "node", id, "err", err)
		return
	}
	s.cfg.Metrics.MapSent(metrics.MapFull, n, time.Time{})
	pacing := Pacing{Batch: s.cfg.BatchDelay, Burst: s.cfg.BurstInterval}
	for {
		keepAlive := s.cfg.KeepAlive
		if keepAlive == 0 {
			keepAlive = 50*time.Second + rand.N(8*time.Second)
		}
		m, err := st.Next(ctx, keepAlive, pacing)
		if err != nil {
			s.log.Debug("map stream closed", "node", id, "reason", err)
			return
		}
		kind, queued, b := metrics.MapKeepAlive, time.Time{}, keepAliveWire(compress)
		if m != nil {
			now := time.Now()
			m.resp.ControlTime = &now
			kind, queued = metrics.MapDelta, st.queued
			if b, err = m.wire(compress); err != nil {
				s.log.Warn("map stream: encoding failed", "node", id, "err", err)
				return
			}
		}
		n, err := writeMapMsg(w, b)
		if err != nil {
			s.log.Debug("map stream closed", "node", id, "err", err)
			return
		}
		s.cfg.Metrics.MapSent(kind, n, queued)
	}
}

// writeMapMsg writes and flushes one message as mapMsg.wire made it. It
// returns the bytes written.
func writeMapMsg(w http.ResponseWriter, wire []byte) (int, error) {
	n, err := w.Write(wire)
	if err != nil {
		return n, err
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	return n, nil
}

// applyMapRequest records what the node reports about itself, tells its
// peers and persists it. It reports false if the node is gone.
func (s *Server) applyMapRequest(ctx context.Context, id tailcfg.NodeID, req *tailcfg.MapRequest) bool {
	changed := false
	_, ok := s.reg.Update(id, func(n *Node) Change {
		c := mapRequestChange(n, req)
		changed = !c.Skip
		return c
	})
	if ok && changed {
		s.persistState(ctx, id)
	}
	return ok
}

// mapRequestChange applies a map request to n (a copy of the current
// node) and says how to announce it: disco key, endpoints and home DERP
// as patches; a new hostname, OS or capability version as a whole-node
// change; other Hostinfo changes silently.
func mapRequestChange(n *Node, req *tailcfg.MapRequest) Change {
	// A streaming request (capability >= 68) is not an update channel;
	// its endpoints can be stale against a newer lite update, so take
	// them only when we know none.
	takeEndpoints := !req.Stream || len(n.Endpoints) == 0
	var c Change
	if !req.DiscoKey.IsZero() && req.DiscoKey != n.DiscoKey {
		n.DiscoKey = req.DiscoKey
		c.Fields |= patchDisco
	}
	if takeEndpoints && len(req.Endpoints) > 0 && !slices.Equal(req.Endpoints, n.Endpoints) {
		n.Endpoints = slices.Clone(req.Endpoints)
		c.Fields |= patchEndpoints
	}
	hostinfoChanged := false
	if req.Hostinfo != nil && (takeEndpoints || n.Hostinfo == nil) {
		if ni := req.Hostinfo.NetInfo; ni != nil && ni.PreferredDERP != 0 && ni.PreferredDERP != n.HomeDERP {
			n.HomeDERP = ni.PreferredDERP
			c.Fields |= patchDERP
		}
		c.Whole = n.Hostinfo == nil || n.Hostinfo.Hostname != req.Hostinfo.Hostname || n.Hostinfo.OS != req.Hostinfo.OS
		hostinfoChanged = true
		n.Hostinfo = req.Hostinfo.Clone()
		if req.Hostinfo.Hostname != "" {
			n.Hostname = req.Hostinfo.Hostname
		}
	}
	if req.Version != 0 && req.Version != n.Cap {
		n.Cap = req.Version
		c.Whole = true
	}
	c.Skip = c.Fields == 0 && !c.Whole && !hostinfoChanged
	return c
}
