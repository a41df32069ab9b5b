package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/secret"
)

func TestUnauthorizedTokens(t *testing.T) {
	srv := apitest.New(t)
	admin := srv.Bootstrap(t, "alice", adminPW)
	ctx := context.Background()
	me, err := srv.Client(t, admin).Me(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// An expired token, inserted directly with an expiry in the past.
	expired, _ := secret.New("dmt")
	if _, err := srv.Store.CreateToken(ctx, store.Token{UserID: me.ID, Name: "old", Kind: store.TokenAPI,
		SecretHash: secret.Hash(expired), ExpiresAt: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	// A revoked (deleted) API token.
	revoked, err := srv.Client(t, admin).CreateToken(ctx, client.CreateTokenRequest{Name: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Client(t, admin).DeleteToken(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	// A token of another kind (e.g. an agent's) does not authenticate users.
	other, _ := secret.New("dma")
	if _, err := srv.Store.CreateToken(ctx, store.Token{UserID: me.ID, Name: "agent", Kind: "agent",
		SecretHash: secret.Hash(other), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	unknown, _ := secret.New("dms")

	for name, header := range map[string]string{
		"none":          "",
		"not bearer":    "Basic " + admin,
		"empty bearer":  "Bearer ",
		"unknown":       "Bearer " + unknown,
		"expired":       "Bearer " + expired,
		"revoked":       "Bearer " + revoked.Secret,
		"other kind":    "Bearer " + other,
		"hash as token": "Bearer " + secret.Hash(admin),
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/users/me", nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: status %d, WWW-Authenticate %q; want 401 with a challenge", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	// The typed client sees the stable code; the message says nothing
	// about why.
	_, errExpired := srv.Client(t, expired).Me(ctx)
	_, errUnknown := srv.Client(t, unknown).Me(ctx)
	e1 := wantAPIError(t, errExpired, http.StatusUnauthorized, client.CodeUnauthorized)
	e2 := wantAPIError(t, errUnknown, http.StatusUnauthorized, client.CodeUnauthorized)
	if e1.Message != e2.Message || strings.Contains(e1.Message, "expired token") {
		t.Fatalf("401 messages differ or leak the reason: %q vs %q", e1.Message, e2.Message)
	}
	// The expired token was dropped when presented.
	if _, err := srv.Store.TokenByHash(ctx, secret.Hash(expired)); err != store.ErrNotFound {
		t.Fatalf("expired token still stored: %v", err)
	}
	// Bearer scheme is case-insensitive; the real token still works.
	resp := call(t, srv, "GET", "/api/v1/users/me", "", "")
	if resp.status != http.StatusUnauthorized {
		t.Fatalf("no token: %d", resp.status)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/users/me", nil)
	req.Header.Set("Authorization", "bearer "+admin)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("lowercase bearer: %v %v", r, err)
	}
}

func TestTokenLastUsedRecorded(t *testing.T) {
	srv := apitest.New(t)
	admin := srv.Bootstrap(t, "alice", adminPW)
	ctx := context.Background()
	created, err := srv.Client(t, admin).CreateToken(ctx, client.CreateTokenRequest{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if !created.Token.LastUsedAt.IsZero() {
		t.Fatal("new token already used")
	}
	before := time.Now().Add(-time.Second)
	if _, err := srv.Client(t, created.Secret).Me(ctx); err != nil {
		t.Fatal(err)
	}
	tok, err := srv.Store.TokenByHash(ctx, secret.Hash(created.Secret))
	if err != nil {
		t.Fatal(err)
	}
	if tok.LastUsedAt.Before(before) {
		t.Fatalf("last_used_at = %v after a use at %v", tok.LastUsedAt, before)
	}
}

func TestMalformedRequests(t *testing.T) {
	srv := apitest.New(t)
	admin := srv.Bootstrap(t, "alice", adminPW)
	for name, tc := range map[string]struct {
		path, body string
		status     int
		code       string
	}{
		"syntax":        {"/api/v1/tokens", `{"name": "x"`, 400, client.CodeBadJSON},
		"not json":      {"/api/v1/tokens", `name=x`, 400, client.CodeBadJSON},
		"unknown field": {"/api/v1/tokens", `{"name": "x", "admin": true}`, 400, client.CodeBadJSON},
		"wrong type":    {"/api/v1/tokens", `{"name": 5}`, 400, client.CodeBadJSON},
		"trailing data": {"/api/v1/tokens", `{"name": "x"} {"name": "y"}`, 400, client.CodeBadJSON},
		"empty body":    {"/api/v1/authkeys", ``, 400, client.CodeBadJSON},
		"too large":     {"/api/v1/tokens", `{"name": "` + strings.Repeat("a", 70<<10) + `"}`, 413, client.CodeBodyTooLarge},
		"login too large": {"/api/v1/login", `{"username": "alice", "password": "` + strings.Repeat("a", 70<<10) + `"}`,
			413, client.CodeBodyTooLarge},
		"bad token name": {"/api/v1/tokens", `{"name": "a/b"}`, 400, client.CodeBadRequest},
	} {
		resp := call(t, srv, "POST", tc.path, admin, tc.body)
		if resp.status != tc.status {
			t.Errorf("%s: status %d (%s), want %d", name, resp.status, resp.body, tc.status)
			continue
		}
		if e := resp.apiErr(t); e.Code != tc.code || e.Message == "" {
			t.Errorf("%s: error %+v, want code %s", name, e, tc.code)
		}
	}
	if n := countRows(t, srv, "api_tokens"); n != 1 { // the admin's session
		t.Fatalf("malformed requests created tokens: %d rows", n)
	}
}

func TestUnknownRoutesAnswerJSON(t *testing.T) {
	srv := apitest.New(t)
	resp := call(t, srv, "GET", "/api/v1/nope", "", "")
	if resp.status != http.StatusNotFound || resp.apiErr(t).Code != client.CodeNotFound {
		t.Fatalf("unknown path: %d %s", resp.status, resp.body)
	}
	resp = call(t, srv, "PUT", "/api/v1/login", "", "{}")
	if resp.status != http.StatusMethodNotAllowed || resp.apiErr(t).Code != client.CodeMethodNotAllowed ||
		!strings.Contains(resp.header.Get("Allow"), "POST") {
		t.Fatalf("wrong method: %d %s Allow=%q", resp.status, resp.body, resp.header.Get("Allow"))
	}
	if cc := resp.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control = %q", cc)
	}
}
