package loadgen

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"

	jsonv2 "github.com/go-json-experiment/json"
	"tailscale.com/control/ts2021"
	"tailscale.com/tailcfg"
	"tailscale.com/util/zstdframe"
)

// The load generator shares the machine with the server it measures, and
// N simulated clients decoding every peer of every message in full
// (tailcfg.Node: keys, addresses, Hostinfo) would cost more CPU than the
// server spends producing them: the generator, not the server, would
// bound the measured rates. So a simulated node reads its map stream
// itself and decodes only what it checks: which peers it has and their
// endpoints. The wire protocol is the one tailscaled reads (framed, zstd
// frames, JSON), and each message is parsed in full as JSON (with
// go-json-experiment/json, which tailscale.com already uses and which
// skips unknown members several times faster than encoding/json), just
// into fewer fields.

// maxMapMessage bounds one framed message (compressed and decoded).
const maxMapMessage = 64 << 20

// lightResponse is the part of a tailcfg.MapResponse the load checks.
type lightResponse struct {
	KeepAlive         bool
	Peers             []lightPeer
	PeersChanged      []lightPeer
	PeersRemoved      []tailcfg.NodeID
	PeersChangedPatch []lightPatch
}

type lightPeer struct {
	ID        tailcfg.NodeID
	Endpoints []netip.AddrPort
}

type lightPatch struct {
	NodeID    tailcfg.NodeID
	Endpoints []netip.AddrPort
}

// mapStream is a streaming map long poll read frame by frame.
type mapStream struct {
	body io.ReadCloser
	hdr  [4]byte
	buf  []byte // reused for the compressed message
	dec  []byte // reused for the decoded message
}

// openMapStream starts a streaming map request over the node's Noise
// connection (roundTrip), as tailscaled's does: capability, node key,
// Hostinfo, zstd. Like a current tailscaled's streaming request, it is
// read-only for endpoints: they come in lite updates (sendEndpoints).
func openMapStream(ctx context.Context, roundTrip func(*http.Request) (*http.Response, error), req tailcfg.MapRequest) (*mapStream, error) {
	req.Stream, req.Compress = true, "zstd"
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, "POST", "https://unused/machine/map", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	ts2021.AddLBHeader(hreq, req.NodeKey)
	res, err := roundTrip(hreq)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 200))
		res.Body.Close()
		return nil, fmt.Errorf("map request: http %d: %s", res.StatusCode, bytes.TrimSpace(msg))
	}
	return &mapStream{body: res.Body}, nil
}

// next reads and decodes the next message into resp (which it zeroes).
func (m *mapStream) next(resp *lightResponse) error {
	if _, err := io.ReadFull(m.body, m.hdr[:]); err != nil {
		return err
	}
	n := binary.LittleEndian.Uint32(m.hdr[:])
	if n == 0 || n > maxMapMessage {
		return fmt.Errorf("map message of %d bytes", n)
	}
	if cap(m.buf) < int(n) {
		m.buf = make([]byte, n)
	}
	m.buf = m.buf[:n]
	if _, err := io.ReadFull(m.body, m.buf); err != nil {
		return err
	}
	dec, err := zstdframe.AppendDecode(m.dec[:0], m.buf, zstdframe.MaxDecodedSize(maxMapMessage))
	if err != nil {
		return fmt.Errorf("map message: %w", err)
	}
	*resp = lightResponse{}
	err = jsonv2.Unmarshal(dec, resp)
	// Keep the buffers of small messages only: a full map of thousands
	// of peers, kept by every simulated node, would be most of the
	// generator's memory.
	m.dec = keepSmall(dec)
	m.buf = keepSmall(m.buf)
	return err
}

func keepSmall(b []byte) []byte {
	if cap(b) > 64<<10 {
		return nil
	}
	return b[:0]
}

func (m *mapStream) close() error { return m.body.Close() }
