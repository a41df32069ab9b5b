// Package client is a typed Go client for the coordinator's REST API
// (/api/v1), and the home of its wire types. The CLI, the agent and tests
// use it; it must not import the coordinator's server packages.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/devmesh/devmesh/internal/buildinfo"
)

// Response size limits: errors are short; lists are bounded by what one
// account owns.
const (
	maxErrorBody    = 64 << 10
	maxResponseBody = 32 << 20
)

// Client calls one coordinator with one bearer token. It is safe for
// concurrent use.
type Client struct {
	base   *url.URL
	token  string
	http   *http.Client
	header http.Header
	pin    string // pinned certificate fingerprint, or ""
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: one with a 30s timeout).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.header.Set("User-Agent", ua) } }

// New returns a client for the coordinator at baseURL (scheme and host,
// e.g. "https://devmesh.example.com"). token may be empty for the
// endpoints that need no authentication.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := ParseURL(baseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		base:   u,
		token:  token,
		http:   &http.Client{Timeout: 30 * time.Second},
		header: http.Header{"User-Agent": {"devmesh/" + buildinfo.Version()}},
	}
	for _, o := range opts {
		o(c)
	}
	if err := c.applyPin(); err != nil {
		return nil, err
	}
	return c, nil
}

// ParseURL validates a coordinator URL: http or https, a host, no query.
// The path is kept (a coordinator may sit under a prefix); a trailing
// slash is dropped.
func ParseURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw != "" && !strings.Contains(raw, "://") {
		return nil, fmt.Errorf("coordinator URL %q has no scheme: use https://%s if the server serves HTTPS (--tls-self-signed or --tls-cert), else http://%s", raw, raw, raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("coordinator URL %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("coordinator URL %q: want http(s)://host[:port]", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// URL returns the coordinator's base URL.
func (c *Client) URL() *url.URL { u := *c.base; return &u }

// do sends a JSON request to /api/v1/<path> and decodes a JSON response
// into out (if non-nil). Non-2xx responses become *Error.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	u := c.base.JoinPath("api/v1")
	req, err := http.NewRequestWithContext(ctx, method, u.String()+"/"+path, body)
	if err != nil {
		return err
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return c.explain(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBody)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err := json.Unmarshal(b, e); err != nil || e.Message == "" {
		// Not one of ours (a proxy in between, or the wrong URL).
		e.Code, e.Message = "", fmt.Sprintf("unexpected response from %s: HTTP %s", resp.Request.URL.Host, resp.Status)
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	return e
}
