package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
)

// Browser sessions. A browser carries an ordinary session token (the kind
// POST /api/v1/login returns, stored only as its SHA-256) in the cookie
// SessionCookie. Cookies are sent by the browser on requests that other
// sites trigger, so every state-changing request authenticated by the
// cookie must also carry CSRFHeader (or, for HTML forms, the form field
// CSRFField) with the session's CSRF token. Bearer-authenticated requests
// need none: no browser attaches an Authorization header by itself.
//
// The CSRF token is HMAC-SHA256(session token, csrfLabel): only a holder
// of the session token can compute it, it needs no server-side state or
// key, it dies with the session, and it reveals nothing about the token.
const (
	// SessionCookie is the browser session's cookie.
	SessionCookie = "devmesh_session"
	// CSRFHeader carries the CSRF token on fetch requests.
	CSRFHeader = "X-CSRF-Token"
	// CSRFField carries the CSRF token in HTML form posts.
	CSRFField = "csrf_token"

	csrfLabel = "devmesh csrf v1"
)

var errCSRF = newError(http.StatusForbidden, client.CodeCSRF,
	"missing or wrong CSRF token: reload the page and try again (scripts should use a bearer token)")

// ErrCSRF is EndSession's answer to a request without the session's CSRF
// token.
var ErrCSRF error = errCSRF

// csrfToken derives the CSRF token of a session token.
func csrfToken(sessionToken string) string {
	m := hmac.New(sha256.New, []byte(sessionToken))
	m.Write([]byte(csrfLabel))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// safeMethod reports whether m changes nothing by HTTP's rules (and so
// needs no CSRF token).
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sessionCookie returns the session token in the request's cookie.
func sessionCookie(r *http.Request) (string, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 256 {
		return "", false
	}
	return c.Value, true
}

// checkCSRF enforces the CSRF token on a cookie-authenticated request:
// state-changing methods need the header (or form field) to match.
func checkCSRF(r *http.Request, c caller) error {
	if !c.cookie || safeMethod(r.Method) {
		return nil
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		got = r.PostFormValue(CSRFField)
	}
	if got == "" || !hmac.Equal([]byte(got), []byte(c.csrf)) {
		return errCSRF
	}
	return nil
}

// UserFromRequest returns the user a request is authenticated as, by a
// bearer token or by the session cookie, or false. It is for pages (GET):
// a handler that changes state must also call CheckCSRF. A disabled
// account is not authenticated.
func (a *API) UserFromRequest(r *http.Request) (store.User, bool) {
	c, err := a.authenticate(r)
	if err != nil {
		return store.User{}, false
	}
	return c.user, true
}

// CSRFToken returns the CSRF token pages authenticated by the session
// cookie embed (as <meta name="csrf-token">) and send back in CSRFHeader
// or CSRFField; "" when the request has no valid session cookie.
func (a *API) CSRFToken(r *http.Request) string {
	c, err := a.authenticate(r)
	if err != nil || !c.cookie {
		return ""
	}
	return c.csrf
}

// CheckCSRF reports whether a request may change state: it is
// authenticated by a bearer token, or by the session cookie and carries
// the session's CSRF token in CSRFHeader or the form field CSRFField.
// Handlers outside the API (pages, the terminal's signalling) call it on
// every state-changing request.
func (a *API) CheckCSRF(r *http.Request) bool {
	c, err := a.authenticate(r)
	if err != nil {
		return false
	}
	return checkCSRF(r, c) == nil
}

// StartSession checks a username and password (with the login rate
// limits) and on success sets a new session cookie on w, revoking the
// session the request's cookie held, if any. The error is
// one of CheckPassword's, safe to show. Because a login form can be
// posted by another site (login CSRF), a request whose Origin header
// names another host is refused.
func (a *API) StartSession(w http.ResponseWriter, r *http.Request, username, pw string) (store.User, error) {
	if !sameOrigin(r) {
		return store.User{}, errors.New("this login form was posted from another site; open the login page directly")
	}
	u, err := a.CheckPassword(r.Context(), r, username, pw)
	if err != nil {
		return store.User{}, err
	}
	tok, meta, err := a.newSession(r.Context(), u)
	if err != nil {
		a.log.Error("create browser session", "err", err)
		return store.User{}, errLoginUnavailable
	}
	// The browser's previous session, if any, is replaced, not left
	// valid until it expires.
	if old, err := a.authenticate(r); err == nil && old.cookie {
		if err := a.store.DeleteTokenByID(r.Context(), old.token.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			a.log.Warn("delete replaced browser session", "token_id", old.token.ID, "err", err)
		}
	}
	http.SetCookie(w, a.cookie(r, tok, meta.ExpiresAt))
	a.log.Info("browser login", "username", u.Username, "ip", clientIP(r))
	return u, nil
}

// EndSession revokes the request's cookie session (after checking its
// CSRF token) and clears the cookie. A request without a valid session
// only gets the cookie cleared.
func (a *API) EndSession(w http.ResponseWriter, r *http.Request) error {
	if c, err := a.authenticate(r); err == nil && c.cookie {
		if err := checkCSRF(r, c); err != nil {
			return err
		}
		if err := a.store.DeleteTokenByID(r.Context(), c.token.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete session: %w", err)
		}
	}
	clear := a.cookie(r, "", time.Unix(1, 0))
	clear.MaxAge = -1
	http.SetCookie(w, clear)
	return nil
}

// cookie builds the session cookie: HttpOnly (no script reads it),
// SameSite=Lax (not sent on other sites' subrequests and POSTs), Secure
// when the request came over TLS or the access URL is https (behind a
// TLS-terminating proxy).
func (a *API) cookie(r *http.Request, value string, expires time.Time) *http.Cookie {
	return &http.Cookie{
		Name:     SessionCookie,
		Value:    value,
		Path:     "/",
		Expires:  expires,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		Secure:   r.TLS != nil || strings.HasPrefix(a.accessURL, "https://"),
	}
}

// sameOrigin reports whether the request's Origin header, if any, names
// the host the request was sent to.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true // old browsers and non-browser clients
	}
	u, err := url.Parse(o)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}
