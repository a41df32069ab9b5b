package client

import (
	"context"
	"net/http"
	"net/url"
)

// User statuses.
const (
	UserActive   = "active"
	UserDisabled = "disabled"
)

// Error codes of account management and quotas.
const (
	// CodeAccountDisabled: the token's or login's account is disabled
	// (HTTP 401 for tokens, 403 for a login with the right password).
	CodeAccountDisabled = "account_disabled"
	// CodeLastAdmin: the change would leave no enabled admin, or an admin
	// tried to disable or delete themselves (409).
	CodeLastAdmin = "last_admin"
	// CodeUserHasWorkspaces: a user who owns workspaces, or who pushed
	// templates, cannot be deleted (409).
	CodeUserHasWorkspaces = "user_has_workspaces"
	// CodeQuotaExceeded: the user has as many workspaces or external
	// agents as the server allows (409).
	CodeQuotaExceeded = "quota_exceeded"
	// CodeBuildInProgress: the workspace already has a start or stop
	// build queued or running (409).
	CodeBuildInProgress = "build_in_progress"
)

// RevokedSessions is the answer of RevokeUserSessions.
type RevokedSessions struct {
	Revoked int64 `json:"revoked"`
}

func userPath(name string, rest ...string) string {
	p := "users/" + url.PathEscape(name)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// DisableUser disables an account (admins only): its sessions, API
// tokens, auth keys and tailnet nodes stop working at once.
func (c *Client) DisableUser(ctx context.Context, name string) (User, error) {
	var out User
	return out, c.do(ctx, http.MethodPost, userPath(name, "disable"), nil, &out)
}

// EnableUser enables a disabled account again (admins only).
func (c *Client) EnableUser(ctx context.Context, name string) (User, error) {
	var out User
	return out, c.do(ctx, http.MethodPost, userPath(name, "enable"), nil, &out)
}

// DeleteUser deletes an account that owns no workspaces (admins only).
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, userPath(name), nil, nil)
}

// RevokeUserSessions logs an account out everywhere: it deletes all its
// login sessions, not its API tokens (admins only).
func (c *Client) RevokeUserSessions(ctx context.Context, name string) (RevokedSessions, error) {
	var out RevokedSessions
	return out, c.do(ctx, http.MethodDelete, userPath(name, "sessions"), nil, &out)
}
