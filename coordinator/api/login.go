package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/metrics"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/buildinfo"
	"github.com/devmesh/devmesh/internal/password"
)

// ErrInvalidCredentials is CheckPassword's answer for a wrong password
// and for an unknown user alike.
var ErrInvalidCredentials = errors.New("wrong username or password")

// RateLimitError is CheckPassword's answer when too many attempts came
// from the client's address or for the username.
type RateLimitError struct {
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	secs := int((e.RetryAfter + time.Second - 1) / time.Second)
	return fmt.Sprintf("too many login attempts; try again in %d seconds", secs)
}

// ErrAccountDisabled is CheckPassword's answer for the right password of
// a disabled account (a wrong one gets ErrInvalidCredentials as usual).
var ErrAccountDisabled = errors.New("this account is disabled; ask an admin to enable it")

// errLoginUnavailable hides internal failures from the login page.
var errLoginUnavailable = errors.New("login failed because of a server error; see the coordinator's log")

// CheckPassword verifies a username and password under the login rate
// limits; the control plane's interactive login page calls it. Error
// messages are safe to show users: ErrInvalidCredentials (whether or not
// the user exists), *RateLimitError, or a generic server error.
func (a *API) CheckPassword(ctx context.Context, r *http.Request, username, pw string) (store.User, error) {
	u, err := a.checkPassword(ctx, clientIP(r), username, pw)
	var rl *RateLimitError
	switch {
	case err == nil, errors.Is(err, ErrInvalidCredentials), errors.Is(err, ErrAccountDisabled), errors.As(err, &rl):
		return u, err
	}
	a.log.Error("check password", "err", err)
	return store.User{}, errLoginUnavailable
}

// checkPassword is CheckPassword keyed by the client's address.
func (a *API) checkPassword(ctx context.Context, ip, username, pw string) (store.User, error) {
	username = strings.ToLower(strings.TrimSpace(username))
	att, wait, ok := a.limits.begin(ip, username)
	if !ok {
		a.metrics.RateLimited(metrics.LimitLogin)
		a.log.Warn("login rate limited", "username", username, "ip", ip, "retry_after", wait)
		return store.User{}, &RateLimitError{RetryAfter: wait}
	}
	if att.delay > 0 {
		// The username failed often from many addresses: slow every
		// attempt down a little rather than refuse the right password.
		a.log.Warn("login backoff", "username", username, "ip", ip, "delay", att.delay)
		if err := sleep(ctx, att.delay); err != nil {
			return store.User{}, err
		}
	}
	u, err := a.store.UserByName(ctx, username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("look up user: %w", err)
	}
	release, err := a.acquireKDF(ctx)
	if err != nil {
		return store.User{}, err
	}
	defer release()
	if u.ID == 0 {
		password.VerifyDummy(pw) // as slow as a real check: no user enumeration by timing
		a.metrics.LoginFailed(metrics.LoginBadCredentials)
		a.log.Info("login failed", "username", username, "ip", ip)
		return store.User{}, ErrInvalidCredentials
	}
	match, err := password.Verify(u.PasswordHash, pw)
	if err != nil {
		return store.User{}, fmt.Errorf("verify password of user %d: %w", u.ID, err)
	}
	if !match {
		a.metrics.LoginFailed(metrics.LoginBadCredentials)
		a.log.Info("login failed", "username", username, "ip", ip)
		return store.User{}, ErrInvalidCredentials
	}
	att.succeeded()
	if u.Disabled() {
		a.metrics.LoginFailed(metrics.LoginDisabled)
		a.log.Info("login refused: account disabled", "username", username, "ip", ip)
		return store.User{}, ErrAccountDisabled
	}
	return u, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// acquireKDF waits for a password-hashing slot.
func (a *API) acquireKDF(ctx context.Context) (release func(), err error) {
	select {
	case a.kdf <- struct{}{}:
		return func() { <-a.kdf }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// hashPassword hashes pw in a KDF slot.
func (a *API) hashPassword(ctx context.Context, pw string) (string, error) {
	release, err := a.acquireKDF(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return password.Hash(pw)
}

func (a *API) handleBuildInfo(w http.ResponseWriter, r *http.Request) error {
	n, err := a.store.CountUsers(r.Context())
	if err != nil {
		return fmt.Errorf("count users: %w", err)
	}
	writeJSON(w, http.StatusOK, client.BuildInfo{Version: buildinfo.Version(), Setup: n > 0})
	return nil
}

// handleFirstUser creates the first user, an admin, while there are none.
// store.CreateFirstUser checks and inserts in one transaction, so of two
// racing requests exactly one wins.
func (a *API) handleFirstUser(w http.ResponseWriter, r *http.Request) error {
	var req client.LoginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := validateNewUser(req.Username, req.Password); err != nil {
		return err
	}
	ctx := r.Context()
	if n, err := a.store.CountUsers(ctx); err != nil {
		return fmt.Errorf("count users: %w", err)
	} else if n > 0 {
		return errAlreadySetUp // cheap answer before any hashing
	}
	if wait, ok := a.limits.chargeIP(clientIP(r)); !ok {
		a.metrics.RateLimited(metrics.LimitFirstUser)
		return rateLimited(wait)
	}
	hash, err := a.hashPassword(ctx, req.Password)
	if err != nil {
		return err
	}
	u, err := a.store.CreateFirstUser(ctx, req.Username, hash)
	if errors.Is(err, store.ErrConflict) {
		return errAlreadySetUp
	}
	if err != nil {
		return fmt.Errorf("create first user: %w", err)
	}
	a.control.SetUser(u)
	a.log.Info("created first user", "username", u.Username, "role", u.Role)
	return a.respondSession(w, r, http.StatusCreated, u)
}

var errAlreadySetUp = newError(http.StatusConflict, client.CodeAlreadySetUp,
	"the server already has users; log in instead")

func rateLimited(wait time.Duration) *apiError {
	e := newError(http.StatusTooManyRequests, client.CodeRateLimited, "%s", (&RateLimitError{RetryAfter: wait}).Error())
	e.retryAfter = wait
	return e
}

func (a *API) handleLogin(w http.ResponseWriter, r *http.Request) error {
	var req client.LoginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		return badRequest("username and password are required")
	}
	u, err := a.checkPassword(r.Context(), clientIP(r), req.Username, req.Password)
	var rl *RateLimitError
	switch {
	case errors.Is(err, ErrInvalidCredentials):
		return newError(http.StatusUnauthorized, client.CodeInvalidCredentials, "%s", err.Error())
	case errors.As(err, &rl):
		return rateLimited(rl.RetryAfter)
	case errors.Is(err, ErrAccountDisabled):
		return newError(http.StatusForbidden, client.CodeAccountDisabled, "account %q is disabled; ask an admin to enable it", strings.ToLower(strings.TrimSpace(req.Username)))
	case err != nil:
		return err
	}
	return a.respondSession(w, r, http.StatusOK, u)
}

func (a *API) respondSession(w http.ResponseWriter, r *http.Request, status int, u store.User) error {
	tok, meta, err := a.newSession(r.Context(), u)
	if err != nil {
		return err
	}
	writeJSON(w, status, client.Session{Token: tok, ExpiresAt: meta.ExpiresAt, User: userJSON(u)})
	return nil
}

func (a *API) handleLogout(w http.ResponseWriter, r *http.Request, c caller) error {
	if c.token.Kind != store.TokenSession {
		return newError(http.StatusBadRequest, client.CodeNotASession,
			"this request used an API token, not a session; delete it with `devmesh tokens delete %s`", c.token.Name)
	}
	if err := a.store.DeleteTokenByID(r.Context(), c.token.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("delete session: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) handleMe(w http.ResponseWriter, r *http.Request, c caller) error {
	writeJSON(w, http.StatusOK, userJSON(c.user))
	return nil
}
