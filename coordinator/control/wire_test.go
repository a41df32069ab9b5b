package control

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"tailscale.com/tailcfg"
	"tailscale.com/util/zstdframe"
)

// unwire checks a message's length prefix and returns its JSON, decoded
// both ways clients do: tailscaled decodes each message at once
// (zstdframe), tsp streams every message through one zstd decoder.
func unwire(t *testing.T, wire []byte, compress bool) []byte {
	t.Helper()
	if len(wire) < 4 || int(binary.LittleEndian.Uint32(wire)) != len(wire)-4 {
		t.Fatalf("length prefix does not match the %d bytes after it", len(wire)-4)
	}
	payload := wire[4:]
	if !compress {
		return payload
	}
	whole, err := zstdframe.AppendDecode(nil, payload)
	if err != nil {
		t.Fatalf("zstdframe decode: %v", err)
	}
	dec, err := zstd.NewReader(bytes.NewReader(payload), zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	streamed, err := io.ReadAll(dec)
	if err != nil {
		t.Fatalf("streaming decode: %v", err)
	}
	if !bytes.Equal(whole, streamed) {
		t.Fatalf("the two decoders disagree:\n%s\n%s", whole, streamed)
	}
	return whole
}

// TestWireMatchesEncode: every kind of message, framed for the wire
// compressed or not, carries exactly the spliced JSON.
func TestWireMatchesEncode(t *testing.T) {
	env := &mapEnv{domain: "devmesh.internal", now: time.Now}
	ix := richFixture()
	withPeers, noPeers := sampleDeltas()
	big := &delta{} // a head over storedFrameMax: compressed, not stored
	big.addChanged(2)
	big.addPatch(4, patchEndpoints)
	cases := []struct {
		name string
		msg  func() *mapMsg
	}{
		{"full map", func() *mapMsg { return ix.fullMsg(ix.nodes[1], env) }},
		{"delta with peers", func() *mapMsg { return ix.deltaMsg(ix.nodes[1], withPeers, env) }},
		{"delta without peers", func() *mapMsg { return ix.deltaMsg(ix.nodes[1], noPeers, env) }},
		{"delta with a large head", func() *mapMsg {
			m := ix.deltaMsg(ix.nodes[6], big, env)
			m.resp.Domain = strings.Repeat("x", 2*storedFrameMax)
			return m
		}},
	}
	for _, tc := range cases {
		for _, compress := range []bool{false, true} {
			m := tc.msg()
			want, err := m.encode()
			if err != nil {
				t.Fatal(err)
			}
			wire, err := m.wire(compress)
			if err != nil {
				t.Fatal(err)
			}
			if got := unwire(t, wire, compress); !bytes.Equal(got, want) {
				t.Errorf("%s (compress %v): wire carries\n%s\nwant\n%s", tc.name, compress, got, want)
			}
		}
	}
}

// TestStoredFrame: stored frames of every size class, across the 128 KiB
// block limit, decode to their input.
func TestStoredFrame(t *testing.T) {
	for _, n := range []int{0, 1, 255, 256, 4096, 128 << 10, 128<<10 + 1, 300 << 10} {
		in := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		framed := appendStoredFrame([]byte("prefix"), in)
		if !bytes.HasPrefix(framed, []byte("prefix")) {
			t.Fatal("appendStoredFrame lost what dst held")
		}
		out, err := zstdframe.AppendDecode(nil, framed[len("prefix"):])
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("%d bytes: decoded %d different bytes", n, len(out))
		}
	}
}

// TestSharedFrames: the streams whose deltas carry the same peer
// versions get one compressed frame; a new version of a peer, another
// rendering of it or a reset of the encodings gets a new one.
func TestSharedFrames(t *testing.T) {
	env := &mapEnv{domain: "devmesh.internal", now: time.Now}
	ix := richFixture()
	d := func() *delta {
		d := &delta{}
		d.addChanged(3)
		d.addFilter(3) // differs per viewer: stays outside the shared frame
		return d
	}
	peerFrame := func(viewer tailcfg.NodeID) []byte {
		t.Helper()
		m := ix.deltaMsg(ix.nodes[viewer], d(), env)
		wire, err := m.wire(true)
		if err != nil {
			t.Fatal(err)
		}
		unwire(t, wire, true)
		return ix.enc.frames.get(m.epoch, m.peers)
	}
	same := func(a, b []byte) bool { return &a[0] == &b[0] }

	// Alice's devices 1 and 2 both see her workspace agent 3.
	a, b := peerFrame(1), peerFrame(2)
	if !same(a, b) {
		t.Fatal("two viewers of the same peer version compressed it twice")
	}
	legacy := ix.nodes[2].clone()
	legacy.Cap = 100 // reads the home region from the legacy DERP string
	ix.insert(legacy)
	if same(a, peerFrame(2)) {
		t.Fatal("a viewer that renders the peer differently got the shared frame")
	}
	ix.patch(3, patchEndpoints, func(n *Node) { n.Endpoints = nil })
	c := peerFrame(1)
	if same(a, c) {
		t.Fatal("a new version of the peer got the old frame")
	}
	ix.setUser(User{ID: alice, Username: "alicia"}) // renames alice's nodes
	if same(c, peerFrame(1)) {
		t.Fatal("after a reset of the encodings, the old frame was served")
	}
}
