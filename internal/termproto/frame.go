// Package termproto is the browser terminal's wire format, shared by the
// coordinator (which signs tickets and relays frames) and the agent
// (which verifies tickets and serves the terminal).
//
// Frames. Each transport message (a WebRTC data-channel message or a
// WebSocket binary message) carries exactly one frame: a type byte, then
// the payload.
//
//	'i' input    client -> agent  bytes typed, written to the PTY as they are
//	'r' resize   client -> agent  4 bytes: columns, rows (uint16, big endian)
//	'p' ping     client -> agent  up to 64 bytes, echoed back in a pong
//	'h' hello    agent -> client  JSON Hello, first frame after attaching
//	'o' output   agent -> client  bytes from the PTY (the scrollback first)
//	'P' pong     agent -> client  the ping's payload
//	'x' exit     agent -> client  the shell's exit status in decimal; the end
//	'e' error    agent -> client  a message for the user; the end
//
// Unknown frame types are ignored, so either side may add types.
package termproto

import (
	"encoding/binary"
	"errors"
)

// Frame types.
const (
	Input  byte = 'i'
	Resize byte = 'r'
	Ping   byte = 'p'
	Hello  byte = 'h'
	Output byte = 'o'
	Pong   byte = 'P'
	Exit   byte = 'x'
	Error  byte = 'e'
)

// Limits.
const (
	// MaxFrame bounds a frame, so a message fits a data channel's
	// default SCTP message size with room to spare.
	MaxFrame = 16 << 10
	// MaxPing bounds a ping's payload.
	MaxPing = 64
)

// ErrEmpty is a frame with no type byte.
var ErrEmpty = errors.New("termproto: empty frame")

// HelloMsg is the payload of a hello frame.
type HelloMsg struct {
	// Session is the session id the client asked for.
	Session string `json:"session"`
	// Reattached is true when the session existed before this attach
	// (its scrollback follows); false for a new shell.
	Reattached bool `json:"reattached"`
	// Path is "direct" (WebRTC) or "relayed", as the agent sees it.
	Path string `json:"path"`
}

// Paths of HelloMsg.Path.
const (
	PathDirect  = "direct"
	PathRelayed = "relayed"
)

// Frame returns a frame of type t with payload p.
func Frame(t byte, p []byte) []byte {
	b := make([]byte, 1+len(p))
	b[0] = t
	copy(b[1:], p)
	return b
}

// ResizeFrame returns a resize frame.
func ResizeFrame(cols, rows uint16) []byte {
	b := []byte{Resize, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(b[1:], cols)
	binary.BigEndian.PutUint16(b[3:], rows)
	return b
}

// ParseResize returns a resize payload's size. Zero sizes are refused:
// they would make full-screen programs divide by zero.
func ParseResize(p []byte) (cols, rows uint16, err error) {
	if len(p) != 4 {
		return 0, 0, errors.New("termproto: a resize payload is 4 bytes")
	}
	cols, rows = binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:])
	if cols == 0 || rows == 0 {
		return 0, 0, errors.New("termproto: zero terminal size")
	}
	return cols, rows, nil
}

// Split returns a frame's type and payload.
func Split(f []byte) (byte, []byte, error) {
	if len(f) == 0 {
		return 0, nil, ErrEmpty
	}
	return f[0], f[1:], nil
}
