package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/secret"
)

// Secret prefixes: they make leaked secrets recognisable to scanners and
// to people reading a config file.
const (
	sessionPrefix  = "dms"
	apiTokenPrefix = "dmt"
	authKeyPrefix  = "dmkey"
)

// touchEvery bounds how often a token's last_used_at is written.
const touchEvery = time.Minute

// caller is the authenticated user of a request and the token they used.
type caller struct {
	user  store.User
	token store.Token
	// cookie is set when the token came in the session cookie, not an
	// Authorization header; csrf is then the session's CSRF token.
	cookie bool
	csrf   string
}

// authedFunc is a handler that runs only for an authenticated caller.
type authedFunc func(w http.ResponseWriter, r *http.Request, c caller) error

// authed adapts a handler that needs a valid bearer token.
func (a *API) authed(h authedFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := a.authenticate(r)
		if err == nil {
			err = checkCSRF(r, c)
		}
		if err == nil {
			err = h(w, r, c)
		}
		a.finish(w, r, err)
	})
}

// admin adapts a handler that needs an admin's bearer token.
func (a *API) admin(h authedFunc) http.Handler {
	return a.authed(func(w http.ResponseWriter, r *http.Request, c caller) error {
		if !c.user.IsAdmin() {
			return errForbidden
		}
		return h(w, r, c)
	})
}

// authenticate resolves the request's bearer token, or without an
// Authorization header its session cookie (which must hold a session,
// not an API token). Every kind of failure gets the same 401, so the
// response says nothing about why. It does not check CSRF tokens.
func (a *API) authenticate(r *http.Request) (caller, error) {
	raw, ok := bearerToken(r)
	viaCookie := false
	if !ok && r.Header.Get("Authorization") == "" {
		raw, ok = sessionCookie(r)
		viaCookie = true
	}
	if !ok {
		return caller{}, errUnauthorized
	}
	ctx := r.Context()
	tok, err := a.store.TokenByHash(ctx, secret.Hash(raw))
	if errors.Is(err, store.ErrNotFound) {
		return caller{}, errUnauthorized
	}
	if err != nil {
		return caller{}, fmt.Errorf("look up token: %w", err)
	}
	if tok.Kind != store.TokenSession && tok.Kind != store.TokenAPI {
		return caller{}, errUnauthorized // another component's credential
	}
	if viaCookie && tok.Kind != store.TokenSession {
		return caller{}, errUnauthorized
	}
	now := time.Now()
	if !tok.ExpiresAt.IsZero() && !now.Before(tok.ExpiresAt) {
		// Expired tokens are useless; drop them when they show up.
		if err := a.store.DeleteTokenByID(ctx, tok.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			a.log.Warn("delete expired token", "token_id", tok.ID, "err", err)
		}
		return caller{}, errUnauthorized
	}
	u, err := a.store.UserByID(ctx, tok.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return caller{}, errUnauthorized
	}
	if err != nil {
		return caller{}, fmt.Errorf("look up token owner: %w", err)
	}
	if u.Disabled() {
		// The holder has a valid token, so saying why is safe.
		return caller{}, errAccountDisabled(u.Username)
	}
	if now.Sub(tok.LastUsedAt) >= touchEvery {
		if err := a.store.TouchToken(ctx, tok.ID, now); err != nil {
			a.log.Warn("record token use", "token_id", tok.ID, "err", err)
		}
	}
	c := caller{user: u, token: tok, cookie: viaCookie}
	if viaCookie {
		c.csrf = csrfToken(raw)
	}
	return c, nil
}

// bearerToken returns the token in "Authorization: Bearer <token>".
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > 256 {
		return "", false
	}
	return tok, true
}

// newSession mints a session token for u; only its hash is stored.
func (a *API) newSession(ctx context.Context, u store.User) (string, store.Token, error) {
	full, id := secret.New(sessionPrefix)
	tok, err := a.store.CreateToken(ctx, store.Token{
		UserID:     u.ID,
		Name:       "session-" + id,
		Kind:       store.TokenSession,
		SecretHash: secret.Hash(full),
		ExpiresAt:  time.Now().Add(a.session),
	})
	if err != nil {
		return "", store.Token{}, fmt.Errorf("create session: %w", err)
	}
	return full, tok, nil
}
