package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// BuildInfo returns the server's version and whether it has users. It
// needs no token.
func (c *Client) BuildInfo(ctx context.Context) (BuildInfo, error) {
	var out BuildInfo
	return out, c.do(ctx, http.MethodGet, "buildinfo", nil, &out)
}

// CreateFirstUser creates the first user, an admin, and logs in as it. It
// needs no token and fails with CodeAlreadySetUp once any user exists.
func (c *Client) CreateFirstUser(ctx context.Context, req LoginRequest) (Session, error) {
	var out Session
	return out, c.do(ctx, http.MethodPost, "users/first", req, &out)
}

// Login exchanges a username and password for a session token. It needs
// no token.
func (c *Client) Login(ctx context.Context, req LoginRequest) (Session, error) {
	var out Session
	return out, c.do(ctx, http.MethodPost, "login", req, &out)
}

// Logout deletes the client's session token on the server.
func (c *Client) Logout(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "logout", nil, nil)
}

// Me returns the user the token belongs to.
func (c *Client) Me(ctx context.Context) (User, error) {
	var out User
	return out, c.do(ctx, http.MethodGet, "users/me", nil, &out)
}

// CreateUser creates an account (admins only).
func (c *Client) CreateUser(ctx context.Context, req CreateUserRequest) (User, error) {
	var out User
	return out, c.do(ctx, http.MethodPost, "users", req, &out)
}

// ListUsers lists all accounts (admins only).
func (c *Client) ListUsers(ctx context.Context) ([]User, error) {
	var out []User
	return out, c.do(ctx, http.MethodGet, "users", nil, &out)
}

// CreateToken mints an API token for the calling user.
func (c *Client) CreateToken(ctx context.Context, req CreateTokenRequest) (CreatedToken, error) {
	var out CreatedToken
	return out, c.do(ctx, http.MethodPost, "tokens", req, &out)
}

// ListTokens lists the calling user's API tokens, without secrets.
func (c *Client) ListTokens(ctx context.Context) ([]Token, error) {
	var out []Token
	return out, c.do(ctx, http.MethodGet, "tokens", nil, &out)
}

// DeleteToken deletes the calling user's API token by name.
func (c *Client) DeleteToken(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "tokens/"+url.PathEscape(name), nil, nil)
}

// CreateAuthKey mints a tailnet auth key owned by the calling user.
func (c *Client) CreateAuthKey(ctx context.Context, req CreateAuthKeyRequest) (CreatedAuthKey, error) {
	var out CreatedAuthKey
	return out, c.do(ctx, http.MethodPost, "authkeys", req, &out)
}

// ListAuthKeys lists the calling user's auth keys, without secrets.
func (c *Client) ListAuthKeys(ctx context.Context) ([]AuthKey, error) {
	var out []AuthKey
	return out, c.do(ctx, http.MethodGet, "authkeys", nil, &out)
}

// RevokeAuthKey revokes one of the calling user's auth keys by ID.
func (c *Client) RevokeAuthKey(ctx context.Context, id int64) error {
	return c.do(ctx, http.MethodDelete, "authkeys/"+strconv.FormatInt(id, 10), nil, nil)
}

// ListNodesOptions filters ListNodes.
type ListNodesOptions struct {
	// All lists every user's nodes (admins only).
	All bool
}

// ListNodes lists the calling user's tailnet nodes.
func (c *Client) ListNodes(ctx context.Context, opts ListNodesOptions) ([]Node, error) {
	path := "nodes"
	if opts.All {
		path += "?all=true"
	}
	var out []Node
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// DeleteNode removes a node from the tailnet: one of the caller's own, or
// any node for an admin.
func (c *Client) DeleteNode(ctx context.Context, id int64) error {
	return c.do(ctx, http.MethodDelete, "nodes/"+strconv.FormatInt(id, 10), nil, nil)
}
