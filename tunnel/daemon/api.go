// Package daemon is devmesh's background client daemon: one long-lived
// tailnet node for the logged-in user, kept across restarts, and a small
// local API on a Unix socket through which the CLI dials, pings and
// measures instead of starting a node per command. Client is the API's
// client.
//
// # The local API, version 1
//
// HTTP/1.1 over a Unix socket (mode 0600 in a 0700 directory). Every
// request is also checked against the connecting process's credentials
// (SO_PEERCRED, LOCAL_PEERCRED on macOS): only the daemon's own user and
// root get an answer; others get 403. Errors are JSON bodies
// {"error": "...", "code": "..."} with the codes below. Addresses are
// tailnet addresses or names of peers in the daemon's netmap.
//
//	GET  /v1/status                     Status
//	GET  /v1/events                     newline-delimited Event values: the current peers at
//	                                    once, then one each time the peer set or state changes
//	POST /v1/dial?network=tcp&addr=H:P  with "Connection: Upgrade", "Upgrade: devmesh-dial/1":
//	     [&timeout=D]                   101 Switching Protocols, then the socket carries the
//	                                    byte stream to H:P (half-close passes through)
//	POST /v1/ping?ip=IP[&timeout=D]     one disco ping: node.PingResult
//	POST /v1/reachable?ip=IP            waits (at most 3 s, once per peer) until the peer
//	                                    knows this node; 204, or 504 if it never answered
//	GET  /v1/netcheck                   node.NetReport of the daemon's network
//	POST /v1/speedtest?ip=IP&direction=down|up&duration=D
//	                                    runs the speedtest with the agent at IP from the daemon:
//	                                    tunnel.SpeedResult
//	POST /v1/vpn/up                     switch to VPN mode (TUN device, routes, DNS): VPNStatus;
//	                                    403 vpn_failed without CAP_NET_ADMIN or off Linux
//	POST /v1/vpn/down                   undo VPN mode, back to plain mode: VPNStatus
//
// D is a Go duration ("5s"). Unknown paths answer 404.
package daemon

import (
	"errors"
	"net/netip"
	"time"

	"github.com/devmesh/devmesh/node"
)

// APIVersion is the version of the local API this package speaks.
const APIVersion = 1

// dialProtocol is the Upgrade token of /v1/dial.
const dialProtocol = "devmesh-dial/1"

// Error codes of the local API.
const (
	CodeBadRequest = "bad_request"
	CodeForbidden  = "forbidden"
	CodeNotFound   = "not_found"
	CodeNoPeer     = "no_peer"     // not in the netmap (unknown or not permitted)
	CodeRefused    = "refused"     // the peer answered: nothing listens there
	CodeTimeout    = "timeout"     // the peer did not answer in time
	CodeDialFailed = "dial_failed" // any other failure to connect
	CodeInternal   = "internal"
	CodeVPNFailed  = "vpn_failed" // VPN mode could not be switched; the message says why
)

// Status is the daemon's state, from /v1/status.
type Status struct {
	APIVersion int       `json:"api_version"`
	Version    string    `json:"version"` // devmesh version of the daemon
	PID        int       `json:"pid"`
	Started    time.Time `json:"started"`
	// ControlURL is the coordinator; User the login name the daemon's
	// node belongs to. A CLI logged in elsewhere must not use it.
	ControlURL string       `json:"control_url"`
	User       string       `json:"user"`
	Hostname   string       `json:"hostname"`
	Addrs      []netip.Addr `json:"addrs"`
	// State is the node's backend state ("Running", "Starting", ...).
	State string      `json:"state"`
	Peers []node.Peer `json:"peers"`
	// VPN is VPN mode's state (absent from daemons before VPN mode).
	VPN *VPNStatus `json:"vpn,omitempty"`
}

// Event is one message of /v1/events.
type Event struct {
	Time  time.Time   `json:"time"`
	State string      `json:"state"`
	Peers []node.Peer `json:"peers"`
}

// apiError is an error body.
type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// Errors of the daemon's start and of reaching it.
var (
	// ErrAlreadyRunning: another daemon holds the state directory or
	// answers on the socket.
	ErrAlreadyRunning = errors.New("a devmesh daemon is already running")
	// ErrNotRunning: no daemon answers on the socket (there is none, or
	// the socket file is stale).
	ErrNotRunning = errors.New("no devmesh daemon is running")
	// ErrUnsupported: this OS cannot check who connects to the socket.
	ErrUnsupported = errors.New("the devmesh daemon is not supported on this OS yet (its socket cannot check who connects)")
)
