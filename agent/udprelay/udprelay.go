// Package udprelay carries UDP datagrams over a stream, so that a UDP
// service on a workspace's loopback can be reached through the tailnet.
//
// The protocol, on the agent's tailnet TCP port Port: the client opens
// one connection per local UDP client address and sends a 3-byte header,
// the protocol version (1) and the target UDP port as 2 bytes big-endian.
// Then each side sends frames, one per datagram: the payload's length as
// 2 bytes big-endian, then the payload. The server sends the client's
// frames from a UDP socket of its own to 127.0.0.1:port and frames the
// replies back. Either side ends the flow by closing the connection; the
// server does so after IdleTimeout without a datagram either way.
//
// The agent serves it (Serve); the port-forward client (tunnel) speaks it.
package udprelay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Port is the tailnet TCP port agents serve the relay on.
const Port = 4445

// MaxDatagram is the largest payload a frame carries.
const MaxDatagram = 1<<16 - 1

const version = 1

// ErrTooLarge is returned by WriteFrame for a payload over MaxDatagram.
var ErrTooLarge = errors.New("udprelay: datagram larger than 65535 bytes")

// WriteHeader sends the header that opens a flow to UDP port on the
// server's loopback.
func WriteHeader(w io.Writer, port uint16) error {
	_, err := w.Write([]byte{version, byte(port >> 8), byte(port)})
	return err
}

// ReadHeader reads the header and returns the target port.
func ReadHeader(r io.Reader) (uint16, error) {
	var h [3]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, fmt.Errorf("udprelay: read header: %w", err)
	}
	if h[0] != version {
		return 0, fmt.Errorf("udprelay: unsupported version %d", h[0])
	}
	port := binary.BigEndian.Uint16(h[1:])
	if port == 0 {
		return 0, errors.New("udprelay: target port 0")
	}
	return port, nil
}

// WriteFrame sends p as one frame, in a single Write.
func WriteFrame(w io.Writer, p []byte) error {
	if len(p) > MaxDatagram {
		return ErrTooLarge
	}
	b := make([]byte, 2+len(p))
	binary.BigEndian.PutUint16(b, uint16(len(p)))
	copy(b[2:], p)
	_, err := w.Write(b)
	return err
}

// ReadFrame reads one frame's payload into buf, which must hold
// MaxDatagram bytes, and returns its length. A stream that ends between
// frames gives io.EOF; one that ends inside a frame, io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, buf []byte) (int, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(h[:]))
	if n > len(buf) {
		return 0, fmt.Errorf("udprelay: %d-byte frame, buffer of %d", n, len(buf))
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	return n, nil
}
