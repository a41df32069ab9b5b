package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/devmesh/devmesh/node"
	"github.com/devmesh/devmesh/tunnel"
)

// Client talks to a daemon's local API. It implements tunnel.Tailnet.
type Client struct {
	path string
	hc   *http.Client
}

var _ tunnel.Tailnet = (*Client)(nil)

// NewClient returns a client for the daemon listening on socketPath. It
// does not connect: see Status.
func NewClient(socketPath string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socketPath)
		},
		MaxIdleConns: 2,
	}
	return &Client{path: socketPath, hc: &http.Client{Transport: tr}}
}

// SocketPath returns the socket the client talks to.
func (c *Client) SocketPath() string { return c.path }

// Close releases idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// notRunning explains a failure to connect to the socket, wrapping
// ErrNotRunning when no daemon is there.
func (c *Client) notRunning(err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w (no socket at %s)", ErrNotRunning, c.path)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w (the socket %s is stale: nothing answers on it)", ErrNotRunning, c.path)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("the daemon's socket %s is not accessible (it belongs to another user?): %w", c.path, err)
	}
	return fmt.Errorf("reach the daemon at %s: %w", c.path, err)
}

// do sends a request and decodes a JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, out any) error {
	u := "http://devmesh-daemon" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return c.notRunning(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("daemon %s: bad answer: %w", path, err)
	}
	return nil
}

// decodeError turns an error answer into an error that errors.Is can
// match: node.ErrNoPeer, refusals (node.IsRefused), timeouts.
func decodeError(resp *http.Response) error {
	var e apiError
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		return fmt.Errorf("daemon: %s", resp.Status)
	}
	switch e.Code {
	case CodeNoPeer:
		return fmt.Errorf("daemon: %s: %w", e.Error, node.ErrNoPeer)
	case CodeRefused:
		return fmt.Errorf("daemon: %s: %w", e.Error, syscall.ECONNREFUSED)
	case CodeTimeout:
		return fmt.Errorf("daemon: %s: %w", e.Error, context.DeadlineExceeded)
	}
	return fmt.Errorf("daemon: %s", e.Error)
}

// Status returns the daemon's status. An error wrapping ErrNotRunning
// means there is no daemon (no socket, or a stale one).
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Ping sends one disco ping through the daemon.
func (c *Client) Ping(ctx context.Context, ip netip.Addr) (node.PingResult, error) {
	q := url.Values{"ip": {ip.String()}}
	if dl, ok := ctx.Deadline(); ok {
		q.Set("timeout", time.Until(dl).String())
	}
	var res node.PingResult
	err := c.do(ctx, http.MethodPost, "/v1/ping", q, &res)
	return res, err
}

// WaitReachable: see node.WaitReachable.
func (c *Client) WaitReachable(ctx context.Context, ip netip.Addr) error {
	return c.do(ctx, http.MethodPost, "/v1/reachable", url.Values{"ip": {ip.String()}}, nil)
}

// Netcheck checks the daemon's network.
func (c *Client) Netcheck(ctx context.Context) (*node.NetReport, error) {
	var r node.NetReport
	if err := c.do(ctx, http.MethodGet, "/v1/netcheck", nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Speedtest runs a speedtest with the agent at ip from the daemon.
func (c *Client) Speedtest(ctx context.Context, ip netip.Addr, dir byte, d time.Duration) (tunnel.SpeedResult, error) {
	q := url.Values{"ip": {ip.String()}, "direction": {map[byte]string{tunnel.Download: "down", tunnel.Upload: "up"}[dir]}, "duration": {d.String()}}
	var res tunnel.SpeedResult
	err := c.do(ctx, http.MethodPost, "/v1/speedtest", q, &res)
	return res, err
}

// Events calls fn with each event of the daemon's event stream until ctx
// ends or the stream breaks.
func (c *Client) Events(ctx context.Context, fn func(Event)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://devmesh-daemon/v1/events", nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return c.notRunning(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev Event
		if err := dec.Decode(&ev); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("daemon event stream: %w", err)
		}
		fn(ev)
	}
}

// Dial connects to addr ("ip:port" or "name:port" of a peer) through the
// daemon. The returned connection supports CloseWrite.
func (c *Client) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "unix", c.path)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, c.notRunning(err)
	}
	// Until the answer is in, ctx's end aborts the exchange.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	sc, err := c.upgrade(ctx, conn, network, addr)
	if !stop() || err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, err
	}
	return sc, nil
}

func (c *Client) upgrade(ctx context.Context, conn net.Conn, network, addr string) (net.Conn, error) {
	q := url.Values{"network": {network}, "addr": {addr}}
	if dl, ok := ctx.Deadline(); ok {
		q.Set("timeout", time.Until(dl).String())
	}
	req, err := http.NewRequest(http.MethodPost, "http://devmesh-daemon/v1/dial?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", dialProtocol)
	if err := req.Write(conn); err != nil {
		return nil, c.notRunning(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("daemon dial: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return &streamConn{Conn: conn, r: br}, nil
}

// streamConn is a dial stream: reads go through the buffer that read the
// daemon's answer.
type streamConn struct {
	net.Conn
	r *bufio.Reader
}

func (s *streamConn) Read(p []byte) (int, error) { return s.r.Read(p) }

// CloseWrite half-closes the stream; the daemon passes it on.
func (s *streamConn) CloseWrite() error {
	if cw, ok := s.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("cannot half-close")
}

// VPNUp switches the daemon to VPN mode.
func (c *Client) VPNUp(ctx context.Context) (VPNStatus, error) {
	var st VPNStatus
	err := c.do(ctx, http.MethodPost, "/v1/vpn/up", nil, &st)
	return st, err
}

// VPNDown switches the daemon back to plain mode.
func (c *Client) VPNDown(ctx context.Context) (VPNStatus, error) {
	var st VPNStatus
	err := c.do(ctx, http.MethodPost, "/v1/vpn/down", nil, &st)
	return st, err
}
