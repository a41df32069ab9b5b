package client

import "time"

// Wire types of the REST API. The server (coordinator/api) encodes these
// same types, so the two cannot drift. Times that may be "never" are
// omitted when zero.

// BuildInfo is the server's version and setup state.
type BuildInfo struct {
	Version string `json:"version"`
	// Setup is true once the server has at least one user. While it is
	// false, CreateFirstUser bootstraps the first admin.
	Setup bool `json:"setup"`
}

// Roles a user can have.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// User is an account.
type User struct {
	ID        int64     `json:"id"`
	Username  string    `json:"username"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	// Status is UserActive or UserDisabled; DisabledAt says since when.
	Status     string    `json:"status"`
	DisabledAt time.Time `json:"disabled_at,omitzero"`
}

// LoginRequest carries credentials for Login and CreateFirstUser.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Session is a new session token and whom it authenticates.
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	User      User      `json:"user"`
}

// CreateUserRequest creates an account (admins only). Role defaults to
// RoleMember.
type CreateUserRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Role     string `json:"role,omitempty"`
}

// CreateTokenRequest mints an API token. Lifetime is a Go duration
// ("720h") or a number of days ("30d"); empty means 30 days, at most one
// year.
type CreateTokenRequest struct {
	Name     string `json:"name"`
	Lifetime string `json:"lifetime,omitempty"`
}

// Token is an API token's metadata; the secret is never listed.
type Token struct {
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// CreatedToken is returned once, at creation: Secret is shown nowhere
// else.
type CreatedToken struct {
	Token  Token  `json:"token"`
	Secret string `json:"secret"`
}

// CreateAuthKeyRequest mints a tailnet auth key. Expiry is a Go duration
// or days ("7d"); empty means one hour, at most 90 days.
type CreateAuthKeyRequest struct {
	Reusable  bool   `json:"reusable"`
	Ephemeral bool   `json:"ephemeral"`
	Expiry    string `json:"expiry,omitempty"`
}

// AuthKey is an auth key's metadata; Prefix is its public start
// ("dmkey_abcdefgh"), enough to recognise it, never enough to use it.
type AuthKey struct {
	ID        int64     `json:"id"`
	Prefix    string    `json:"prefix"`
	Reusable  bool      `json:"reusable"`
	Ephemeral bool      `json:"ephemeral"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	UsedAt    time.Time `json:"used_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// CreatedAuthKey is returned once, at creation: Key is shown nowhere else.
type CreatedAuthKey struct {
	AuthKey AuthKey `json:"authkey"`
	Key     string  `json:"key"`
}

// Node is a tailnet node (a device or a workspace agent).
type Node struct {
	ID        int64     `json:"id"`
	StableID  string    `json:"stable_id"`
	Name      string    `json:"name"` // MagicDNS name
	Owner     string    `json:"owner"`
	Agent     bool      `json:"agent"` // a workspace agent's node
	Addresses []string  `json:"addresses"`
	Online    bool      `json:"online"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	Ephemeral bool      `json:"ephemeral"`
	Hostname  string    `json:"hostname"`
	OS        string    `json:"os,omitempty"`
	KeyExpiry time.Time `json:"key_expiry,omitzero"` // zero: never
	CreatedAt time.Time `json:"created_at"`
}
