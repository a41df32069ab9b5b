package sshd

import (
	gossh "golang.org/x/crypto/ssh"
)

// ptyRequest is the payload of a "pty-req" channel request (RFC 4254 6.2).
type ptyRequest struct {
	Term     string
	Columns  uint32
	Rows     uint32
	WidthPx  uint32
	HeightPx uint32
	Modes    string
}

// windowChange is the payload of a "window-change" request (RFC 4254 6.7).
type windowChange struct {
	Columns  uint32
	Rows     uint32
	WidthPx  uint32
	HeightPx uint32
}

func parsePtyRequest(payload []byte) (*ptyRequest, bool) {
	var p ptyRequest
	if err := gossh.Unmarshal(payload, &p); err != nil {
		return nil, false
	}
	return &p, true
}

func (p *ptyRequest) window() windowChange {
	return windowChange{Columns: p.Columns, Rows: p.Rows, WidthPx: p.WidthPx, HeightPx: p.HeightPx}
}
