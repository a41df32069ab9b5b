package client

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"
)

// Browser terminal (docs/terminal.md). The user side: POST
// /workspaces/{name}/terminal/offer and GET /workspaces/{name}/terminal/ws
// (a WebSocket). The agent side below: the agent long-polls for terminal
// requests, answers WebRTC offers, and dials a WebSocket back for a
// relayed terminal.

// Kinds of TerminalRequest.
const (
	TerminalWebRTC = "webrtc"
	TerminalRelay  = "relay"
)

// TerminalOfferRequest is a browser's WebRTC offer.
type TerminalOfferRequest struct {
	// Session is the terminal session id (a UUID the browser keeps).
	Session string `json:"session"`
	// Agent names the agent; "" when the workspace has one.
	Agent string `json:"agent,omitempty"`
	// SDP is the offer, with its ICE candidates gathered.
	SDP string `json:"sdp"`
}

// TerminalAnswer is the agent's answer to a WebRTC offer.
type TerminalAnswer struct {
	SDP string `json:"sdp"`
}

// TerminalConfig tells the browser how to connect: the ICE servers for
// its RTCPeerConnection.
type TerminalConfig struct {
	ICEServers []string `json:"ice_servers"`
}

// TerminalRequest is a terminal request queued for an agent.
type TerminalRequest struct {
	ID   string `json:"id"`
	Kind string `json:"kind"` // TerminalWebRTC or TerminalRelay
	// Ticket is signed by the coordinator (internal/termproto).
	Ticket string `json:"ticket"`
	// Offer is the browser's SDP offer (TerminalWebRTC).
	Offer string `json:"offer,omitempty"`
	// ICEServers are STUN URLs for the agent's peer connection.
	ICEServers []string `json:"ice_servers,omitempty"`
}

// TerminalRequests is the answer of GET /agent/terminal/requests.
type TerminalRequests struct {
	Requests []TerminalRequest `json:"requests"`
}

// TerminalKey is the coordinator's ticket-signing public key.
type TerminalKey struct {
	PublicKey []byte `json:"public_key"` // ed25519, 32 bytes
}

// TerminalAgentAnswer is the agent's reply to a TerminalWebRTC request:
// an answer, or why not.
type TerminalAgentAnswer struct {
	SDP   string `json:"sdp,omitempty"`
	Error string `json:"error,omitempty"`
}

// AgentTerminalKey returns the ticket-signing public key
// (GET /agent/terminal/key).
func (c *Client) AgentTerminalKey(ctx context.Context) (TerminalKey, error) {
	var out TerminalKey
	return out, c.do(ctx, http.MethodGet, "agent/terminal/key", nil, &out)
}

// AgentTerminalRequests waits (up to about 20 s) for terminal requests
// (GET /agent/terminal/requests); an empty list means none came.
func (c *Client) AgentTerminalRequests(ctx context.Context) ([]TerminalRequest, error) {
	var out TerminalRequests
	return out.Requests, c.do(ctx, http.MethodGet, "agent/terminal/requests", nil, &out)
}

// PostAgentTerminalAnswer answers a TerminalWebRTC request
// (POST /agent/terminal/requests/{id}/answer).
func (c *Client) PostAgentTerminalAnswer(ctx context.Context, id string, a TerminalAgentAnswer) error {
	return c.do(ctx, http.MethodPost, "agent/terminal/requests/"+url.PathEscape(id)+"/answer", a, nil)
}

// DialAgentTerminalRelay opens the WebSocket of a TerminalRelay request
// (GET /agent/terminal/requests/{id}/relay).
func (c *Client) DialAgentTerminalRelay(ctx context.Context, id string) (*websocket.Conn, error) {
	return c.DialWebSocket(ctx, "agent/terminal/requests/"+url.PathEscape(id)+"/relay")
}

// DialWebSocket opens a WebSocket to /api/v1/<path> with the client's
// token and TLS settings.
func (c *Client) DialWebSocket(ctx context.Context, path string) (*websocket.Conn, error) {
	u := c.base.JoinPath("api/v1")
	target := u.String() + "/" + path
	target = "ws" + strings.TrimPrefix(target, "http")
	hc := *c.http
	hc.Timeout = 0 // the context bounds the handshake; the connection lives on
	h := http.Header{}
	for k, v := range c.header {
		h[k] = v
	}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	conn, resp, err := websocket.Dial(ctx, target, &websocket.DialOptions{HTTPClient: &hc, HTTPHeader: h})
	if err != nil {
		if resp != nil && resp.StatusCode >= 300 {
			return nil, decodeError(resp)
		}
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, c.explain(err)
	}
	conn.SetReadLimit(1 << 20)
	return conn, nil
}

// TerminalOffer sends a WebRTC offer for the workspace's terminal and
// returns the agent's answer (POST /workspaces/{name}/terminal/offer).
func (c *Client) TerminalOffer(ctx context.Context, workspace string, req TerminalOfferRequest) (TerminalAnswer, error) {
	var out TerminalAnswer
	return out, c.do(ctx, http.MethodPost, "workspaces/"+url.PathEscape(workspace)+"/terminal/offer", req, &out)
}

// DialTerminalRelay opens the relayed terminal of a workspace
// (GET /workspaces/{name}/terminal/ws).
func (c *Client) DialTerminalRelay(ctx context.Context, workspace, agent, session string) (*websocket.Conn, error) {
	q := url.Values{"session": {session}}
	if agent != "" {
		q.Set("agent", agent)
	}
	return c.DialWebSocket(ctx, "workspaces/"+url.PathEscape(workspace)+"/terminal/ws?"+q.Encode())
}
