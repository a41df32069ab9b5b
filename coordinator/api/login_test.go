package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/api"
	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/client"
)

func TestFirstUserBootstrap(t *testing.T) {
	srv := apitest.New(t)
	ctx := context.Background()
	anon := srv.Client(t, "")

	bi, err := anon.BuildInfo(ctx)
	if err != nil || bi.Setup || bi.Version == "" {
		t.Fatalf("BuildInfo on a fresh server = %+v, %v; want setup false", bi, err)
	}
	sess, err := anon.CreateFirstUser(ctx, client.LoginRequest{Username: "alice", Password: adminPW})
	if err != nil {
		t.Fatal(err)
	}
	if sess.User.Username != "alice" || sess.User.Role != client.RoleAdmin || sess.Token == "" {
		t.Fatalf("first user session = %+v", sess)
	}
	if d := time.Until(sess.ExpiresAt); d < 29*24*time.Hour || d > 30*24*time.Hour {
		t.Fatalf("session expires in %v, want 30 days", d)
	}
	me, err := srv.Client(t, sess.Token).Me(ctx)
	if err != nil || me.Username != "alice" || me.Role != client.RoleAdmin {
		t.Fatalf("Me = %+v, %v", me, err)
	}
	if bi, _ := anon.BuildInfo(ctx); !bi.Setup {
		t.Fatal("BuildInfo after bootstrap: setup false")
	}

	_, err = anon.CreateFirstUser(ctx, client.LoginRequest{Username: "mallory", Password: "mallory-password"})
	wantAPIError(t, err, http.StatusConflict, client.CodeAlreadySetUp)
	if n := countRows(t, srv, "users"); n != 1 {
		t.Fatalf("%d users after a refused bootstrap, want 1", n)
	}
}

func TestFirstUserRaceHasOneWinner(t *testing.T) {
	srv := apitest.New(t)
	anon := srv.Client(t, "")
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = anon.CreateFirstUser(context.Background(),
				client.LoginRequest{Username: "user" + strconv.Itoa(i), Password: adminPW})
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		} else if client.ErrorCode(err) != client.CodeAlreadySetUp {
			t.Errorf("unexpected error: %v", err)
		}
	}
	if wins != 1 || countRows(t, srv, "users") != 1 {
		t.Fatalf("%d bootstraps succeeded, %d users; want exactly 1", wins, countRows(t, srv, "users"))
	}
}

func TestFirstUserValidation(t *testing.T) {
	srv := apitest.New(t)
	anon := srv.Client(t, "")
	for _, req := range []client.LoginRequest{
		{Username: "Alice", Password: adminPW},                             // uppercase
		{Username: "1alice", Password: adminPW},                            // leading digit
		{Username: "alice-", Password: adminPW},                            // trailing hyphen
		{Username: "a.b", Password: adminPW},                               // not a DNS label
		{Username: "abcdefghijklmnopqrstuvwxyz0123456", Password: adminPW}, // 33
		{Username: "alice", Password: "short"},
	} {
		_, err := anon.CreateFirstUser(context.Background(), req)
		wantAPIError(t, err, http.StatusBadRequest, client.CodeBadRequest)
	}
	if n := countRows(t, srv, "users"); n != 0 {
		t.Fatalf("%d users after invalid requests", n)
	}
}

func TestLoginWrongPasswordChangesNothing(t *testing.T) {
	srv := apitest.New(t)
	srv.Bootstrap(t, "alice", adminPW)
	ctx := context.Background()
	anon := srv.Client(t, "")
	before := countRows(t, srv, "api_tokens")

	_, err := anon.Login(ctx, client.LoginRequest{Username: "alice", Password: "wrong-password"})
	wrong := wantAPIError(t, err, http.StatusUnauthorized, client.CodeInvalidCredentials)
	_, err = anon.Login(ctx, client.LoginRequest{Username: "nobody", Password: "wrong-password"})
	unknown := wantAPIError(t, err, http.StatusUnauthorized, client.CodeInvalidCredentials)
	if wrong.Message != unknown.Message {
		t.Fatalf("messages differ for wrong password (%q) and unknown user (%q)", wrong.Message, unknown.Message)
	}
	if after := countRows(t, srv, "api_tokens"); after != before {
		t.Fatalf("failed logins changed api_tokens: %d rows, before %d", after, before)
	}

	sess, err := anon.Login(ctx, client.LoginRequest{Username: "Alice ", Password: adminPW})
	if err != nil || sess.User.Username != "alice" {
		t.Fatalf("login with the right password = %+v, %v", sess, err)
	}
}

func TestLoginRateLimitPerUser(t *testing.T) {
	srv := apitest.New(t)
	admin := srv.Bootstrap(t, "alice", adminPW)
	srv.CreateUser(t, admin, "bob", memberPW, client.RoleMember)
	ctx := context.Background()
	anon := srv.Client(t, "")

	for i := range 5 {
		_, err := anon.Login(ctx, client.LoginRequest{Username: "bob", Password: "wrong-password"})
		wantAPIError(t, err, http.StatusUnauthorized, client.CodeInvalidCredentials)
		_ = i
	}
	// Sixth attempt: refused before checking, even with the right password.
	_, err := anon.Login(ctx, client.LoginRequest{Username: "bob", Password: memberPW})
	e := wantAPIError(t, err, http.StatusTooManyRequests, client.CodeRateLimited)
	if e.RetryAfter < time.Second || e.RetryAfter > 10*time.Second {
		t.Fatalf("Retry-After = %v, want 1s..10s", e.RetryAfter)
	}
	resp := call(t, srv, "POST", "/api/v1/login", "", `{"username":"bob","password":"x"}`)
	if resp.status != http.StatusTooManyRequests || resp.header.Get("Retry-After") == "" {
		t.Fatalf("raw: %d, Retry-After %q", resp.status, resp.header.Get("Retry-After"))
	}
	// Another user from the same address is unaffected.
	if _, err := anon.Login(ctx, client.LoginRequest{Username: "alice", Password: adminPW}); err != nil {
		t.Fatalf("alice is blocked by bob's limit: %v", err)
	}
}

func TestLoginRateLimitSuccessIsFree(t *testing.T) {
	srv := apitest.New(t, func(o *api.Options) { o.LoginLimits.IPBurst = 100 })
	srv.Bootstrap(t, "alice", adminPW)
	anon := srv.Client(t, "")
	for i := range 8 { // more than the per-user burst of 5
		if _, err := anon.Login(context.Background(), client.LoginRequest{Username: "alice", Password: adminPW}); err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
	}
}

func TestLoginRateLimitPerIP(t *testing.T) {
	// No refill within the test: at one per 3 s (the default), four
	// password checks on a loaded machine under -race refilled the bucket
	// before the fourth, and CI saw it pass.
	srv := apitest.New(t, func(o *api.Options) { o.LoginLimits.IPBurst, o.LoginLimits.IPInterval = 3, time.Hour })
	anon := srv.Client(t, "")
	for _, u := range []string{"u1", "u2", "u3"} {
		_, err := anon.Login(context.Background(), client.LoginRequest{Username: u, Password: "whatever-pw"})
		wantAPIError(t, err, http.StatusUnauthorized, client.CodeInvalidCredentials)
	}
	_, err := anon.Login(context.Background(), client.LoginRequest{Username: "u4", Password: "whatever-pw"})
	e := wantAPIError(t, err, http.StatusTooManyRequests, client.CodeRateLimited)
	if e.RetryAfter <= 0 {
		t.Fatal("no Retry-After")
	}
}

func TestCheckPassword(t *testing.T) {
	// The (username, IP) bucket does not refill within the test (see
	// TestLoginRateLimitPerIP).
	srv := apitest.New(t, func(o *api.Options) { o.LoginLimits.PairInterval = time.Hour })
	srv.Bootstrap(t, "alice", adminPW)
	ctx := context.Background()
	r := httptest.NewRequest("POST", "/login/node/x", nil)
	r.RemoteAddr = "192.0.2.7:4567"

	u, err := srv.API.CheckPassword(ctx, r, "alice", adminPW)
	if err != nil || u.Username != "alice" {
		t.Fatalf("CheckPassword(right) = %+v, %v", u, err)
	}
	_, errWrong := srv.API.CheckPassword(ctx, r, "alice", "nope-nope")
	_, errUnknown := srv.API.CheckPassword(ctx, r, "zed", "nope-nope")
	if !errors.Is(errWrong, api.ErrInvalidCredentials) || !errors.Is(errUnknown, api.ErrInvalidCredentials) ||
		errWrong.Error() != errUnknown.Error() {
		t.Fatalf("wrong password: %v; unknown user: %v; want the same ErrInvalidCredentials", errWrong, errUnknown)
	}
	for range 4 {
		srv.API.CheckPassword(ctx, r, "alice", "nope-nope")
	}
	_, err = srv.API.CheckPassword(ctx, r, "alice", adminPW)
	var rl *api.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter <= 0 {
		t.Fatalf("after 5 failures: %v, want *RateLimitError", err)
	}
	// The API login shares the limits: failures on the login page from
	// the API client's address refuse its API login.
	local := httptest.NewRequest("POST", "/login/node/x", nil)
	local.RemoteAddr = "127.0.0.1:4567"
	for range 5 {
		srv.API.CheckPassword(ctx, local, "alice", "nope-nope")
	}
	_, err = srv.Client(t, "").Login(ctx, client.LoginRequest{Username: "alice", Password: adminPW})
	wantAPIError(t, err, http.StatusTooManyRequests, client.CodeRateLimited)
}

func TestLogout(t *testing.T) {
	srv := apitest.New(t)
	tok := srv.Bootstrap(t, "alice", adminPW)
	c := srv.Client(t, tok)
	ctx := context.Background()
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := c.Me(ctx)
	wantAPIError(t, err, http.StatusUnauthorized, client.CodeUnauthorized)

	// Logging out with an API token is refused and keeps the token.
	sess, _ := srv.Client(t, "").Login(ctx, client.LoginRequest{Username: "alice", Password: adminPW})
	created, err := srv.Client(t, sess.Token).CreateToken(ctx, client.CreateTokenRequest{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	apiClient := srv.Client(t, created.Secret)
	wantAPIError(t, apiClient.Logout(ctx), http.StatusBadRequest, client.CodeNotASession)
	if _, err := apiClient.Me(ctx); err != nil {
		t.Fatalf("API token stopped working after a refused logout: %v", err)
	}
}
