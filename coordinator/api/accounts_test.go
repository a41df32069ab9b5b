package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/api"
	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/builds"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/secret"
	"github.com/devmesh/devmesh/provision"
)

// loginFrom checks a password as the login page does, from addr.
func loginFrom(srv *apitest.Server, addr, user, pw string) error {
	r := httptest.NewRequest("POST", "/login/node/x", nil)
	r.RemoteAddr = addr
	_, err := srv.API.CheckPassword(context.Background(), r, user, pw)
	return err
}

// TestLoginLockoutIsPerAddress: an attacker failing over and over from
// one address keeps only that address out; the user logs in from another
// (before the fix, five failures locked the account for everyone).
func TestLoginLockoutIsPerAddress(t *testing.T) {
	srv := apitest.New(t, func(o *api.Options) { o.LoginLimits.IPBurst = 100 })
	admin := srv.Bootstrap(t, "alice", adminPW)
	srv.CreateUser(t, admin, "bob", memberPW, client.RoleMember)

	const attacker, bob = "198.51.100.66:1234", "203.0.113.5:5555"
	for i := range 8 {
		err := loginFrom(srv, attacker, "bob", "guess-guess")
		var rl *api.RateLimitError
		if i < 5 && !errors.Is(err, api.ErrInvalidCredentials) || i >= 5 && !errors.As(err, &rl) {
			t.Fatalf("attacker's attempt %d: %v", i, err)
		}
	}
	start := time.Now()
	if err := loginFrom(srv, bob, "bob", memberPW); err != nil {
		t.Fatalf("bob from his own address after the attack: %v", err)
	}
	t.Logf("measured: bob's login during the attack took %v", time.Since(start).Round(time.Millisecond))
	// The attacker stays refused, even with the right password.
	var rl *api.RateLimitError
	if err := loginFrom(srv, attacker, "bob", memberPW); !errors.As(err, &rl) || rl.RetryAfter <= 0 {
		t.Fatalf("attacker with the right password: %v, want refused with a Retry-After", err)
	}
	// The API login from the test client's address is not limited either.
	if _, err := srv.Client(t, "").Login(context.Background(), client.LoginRequest{Username: "bob", Password: memberPW}); err != nil {
		t.Fatalf("API login: %v", err)
	}
}

// TestLoginBackoffSlowsButAdmits: failures from many addresses make every
// attempt for the user wait (growing, capped), but the right password
// from a fresh address still gets in after at most the cap.
func TestLoginBackoffSlowsButAdmits(t *testing.T) {
	const step, maxDelay = 40 * time.Millisecond, 300 * time.Millisecond
	srv := apitest.New(t, func(o *api.Options) {
		o.LoginLimits = api.LoginLimits{PairBurst: 2, UserBurst: 2, UserDelay: step, UserMaxDelay: maxDelay}
	})
	admin := srv.Bootstrap(t, "alice", adminPW)
	srv.CreateUser(t, admin, "bob", memberPW, client.RoleMember)

	attackers := []string{"198.51.100.1:1", "198.51.100.2:1", "198.51.100.3:1", "198.51.100.4:1"}
	for _, a := range attackers {
		for range 2 {
			if err := loginFrom(srv, a, "bob", "guess-guess"); !errors.Is(err, api.ErrInvalidCredentials) {
				t.Fatalf("attack from %s: %v", a, err)
			}
		}
	}
	// An unslowed check for comparison: another user, unaffected.
	start := time.Now()
	if err := loginFrom(srv, "203.0.113.9:1", "alice", adminPW); err != nil {
		t.Fatal(err)
	}
	base := time.Since(start)
	start = time.Now()
	if err := loginFrom(srv, "203.0.113.5:1", "bob", memberPW); err != nil {
		t.Fatalf("bob from a fresh address during the attack: %v", err)
	}
	took := time.Since(start)
	t.Logf("measured: login without backoff %v; bob's during the attack %v (cap %v)", base.Round(time.Millisecond), took.Round(time.Millisecond), maxDelay)
	if took < maxDelay {
		t.Fatalf("bob's login took %v: no backoff (want at least %v)", took, maxDelay)
	}
	if took > maxDelay+base+5*time.Second {
		t.Fatalf("bob's login took %v: the backoff is not bounded by %v", took, maxDelay)
	}
	// Every attacker address stays refused.
	for _, a := range attackers {
		var rl *api.RateLimitError
		if err := loginFrom(srv, a, "bob", memberPW); !errors.As(err, &rl) {
			t.Fatalf("attacker %s after the attack: %v, want refused", a, err)
		}
	}
}

func TestDisableUser(t *testing.T) {
	srv := apitest.New(t)
	ctx := context.Background()
	adminTok := srv.Bootstrap(t, "alice", adminPW)
	admin := srv.Client(t, adminTok)
	bobTok := srv.CreateUser(t, adminTok, "bob", memberPW, client.RoleMember)
	bob := srv.Client(t, bobTok)
	created, err := bob.CreateToken(ctx, client.CreateTokenRequest{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	bobAPI := srv.Client(t, created.Secret)
	me, _ := bob.Me(ctx)
	laptop := addNode(t, srv, me.ID, "laptop", "100.64.0.2", "fd7a:115c:a1e0::2")
	ak, err := bob.CreateAuthKey(ctx, client.CreateAuthKeyRequest{Reusable: true})
	if err != nil {
		t.Fatal(err)
	}

	// Members cannot; an admin can.
	_, err = bob.DisableUser(ctx, "alice")
	wantAPIError(t, err, http.StatusForbidden, client.CodeForbidden)
	u, err := admin.DisableUser(ctx, "bob")
	if err != nil || u.Status != client.UserDisabled || u.DisabledAt.IsZero() {
		t.Fatalf("disable bob = %+v, %v", u, err)
	}
	// At once: session and API token refused, login refused (with the
	// right password only it says why), auth key and nodes gone.
	_, err = bob.Me(ctx)
	wantAPIError(t, err, http.StatusUnauthorized, client.CodeAccountDisabled)
	_, err = bobAPI.Me(ctx)
	wantAPIError(t, err, http.StatusUnauthorized, client.CodeAccountDisabled)
	anon := srv.Client(t, "")
	_, err = anon.Login(ctx, client.LoginRequest{Username: "bob", Password: memberPW})
	wantAPIError(t, err, http.StatusForbidden, client.CodeAccountDisabled)
	_, err = anon.Login(ctx, client.LoginRequest{Username: "bob", Password: "wrong-password"})
	wantAPIError(t, err, http.StatusUnauthorized, client.CodeInvalidCredentials)
	if err := loginFrom(srv, "192.0.2.1:1", "bob", memberPW); !errors.Is(err, api.ErrAccountDisabled) {
		t.Fatalf("login page: %v", err)
	}
	if n := srv.Control.Registry().Node(laptop.ID); n == nil || !n.Expired(time.Now()) {
		t.Fatalf("bob's node is not logged out: %+v", n)
	}
	if srv.Control.AdmitNodeKey(laptop.NodeKey) {
		t.Fatal("DERP still admits bob's node key")
	}
	if _, err := srv.Store.CheckAuthKey(ctx, secret.Hash(ak.Key)); !errors.Is(err, store.ErrAuthKeyRevoked) {
		t.Fatalf("bob's auth key: %v, want refused", err)
	}
	list, err := admin.ListUsers(ctx)
	if err != nil || len(list) != 2 || list[0].Status != client.UserActive || list[1].Status != client.UserDisabled {
		t.Fatalf("users = %+v, %v", list, err)
	}

	// Enabling restores logins, tokens and the auth key.
	if u, err := admin.EnableUser(ctx, "bob"); err != nil || u.Status != client.UserActive {
		t.Fatalf("enable bob = %+v, %v", u, err)
	}
	if _, err := bobAPI.Me(ctx); err != nil {
		t.Fatalf("API token after enable: %v", err)
	}
	if _, err := anon.Login(ctx, client.LoginRequest{Username: "bob", Password: memberPW}); err != nil {
		t.Fatalf("login after enable: %v", err)
	}
	if _, err := srv.Store.CheckAuthKey(ctx, secret.Hash(ak.Key)); err != nil {
		t.Fatalf("auth key after enable: %v", err)
	}
	_, err = admin.DisableUser(ctx, "nobody")
	wantAPIError(t, err, http.StatusNotFound, client.CodeNotFound)
}

func TestAdminCannotRemoveThemselvesOrTheLastAdmin(t *testing.T) {
	srv := apitest.New(t)
	ctx := context.Background()
	aliceTok := srv.Bootstrap(t, "alice", adminPW)
	alice := srv.Client(t, aliceTok)
	carol := srv.Client(t, srv.CreateUser(t, aliceTok, "carol", adminPW, client.RoleAdmin))

	_, err := alice.DisableUser(ctx, "alice")
	wantAPIError(t, err, http.StatusConflict, client.CodeLastAdmin)
	wantAPIError(t, alice.DeleteUser(ctx, "alice"), http.StatusConflict, client.CodeLastAdmin)
	// Carol may disable alice; then alice is out and carol is the last
	// enabled admin, whom no one can disable or delete.
	if _, err := carol.DisableUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Store.SetUserDisabled(ctx, 2, true); !errors.Is(err, store.ErrLastAdmin) {
		t.Fatalf("disable the last enabled admin in the store: %v", err)
	}
	if err := srv.Store.DeleteUser(ctx, 2); !errors.Is(err, store.ErrLastAdmin) {
		t.Fatalf("delete the last enabled admin in the store: %v", err)
	}
	// A disabled admin may be deleted.
	if err := carol.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteUser(t *testing.T) {
	srv := apitest.New(t)
	ctx := context.Background()
	adminTok := srv.Bootstrap(t, "alice", adminPW)
	admin := srv.Client(t, adminTok)
	bob := srv.Client(t, srv.CreateUser(t, adminTok, "bob", memberPW, client.RoleMember))
	me, _ := bob.Me(ctx)
	phone := addNode(t, srv, me.ID, "phone", "100.64.0.3", "fd7a:115c:a1e0::3")
	if _, err := bob.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", External: true}); err != nil {
		t.Fatal(err)
	}

	wantAPIError(t, admin.DeleteUser(ctx, "bob"), http.StatusConflict, client.CodeUserHasWorkspaces)
	if _, err := bob.Me(ctx); err != nil {
		t.Fatalf("a refused delete changed bob: %v", err)
	}
	if _, err := bob.DeleteWorkspace(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	_, err := bob.Me(ctx)
	wantAPIError(t, err, http.StatusUnauthorized, client.CodeUnauthorized)
	if srv.Control.Registry().Node(phone.ID) != nil {
		t.Fatal("the deleted user's node is still on the tailnet")
	}
	for _, table := range []string{"api_tokens", "nodes"} {
		if n := countRows(t, srv, table); table == "nodes" && n != 0 || table == "api_tokens" && n != 1 {
			t.Fatalf("%d rows left in %s", n, table)
		}
	}
	wantAPIError(t, admin.DeleteUser(ctx, "bob"), http.StatusNotFound, client.CodeNotFound)
}

func TestRevokeUserSessions(t *testing.T) {
	srv := apitest.New(t)
	ctx := context.Background()
	adminTok := srv.Bootstrap(t, "alice", adminPW)
	admin := srv.Client(t, adminTok)
	s1 := srv.CreateUser(t, adminTok, "bob", memberPW, client.RoleMember)
	s2, err := srv.Client(t, "").Login(ctx, client.LoginRequest{Username: "bob", Password: memberPW})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := srv.Client(t, s1).CreateToken(ctx, client.CreateTokenRequest{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := admin.RevokeUserSessions(ctx, "bob")
	if err != nil || r.Revoked != 2 {
		t.Fatalf("revoke = %+v, %v; want 2", r, err)
	}
	for _, s := range []string{s1, s2.Token} {
		_, err := srv.Client(t, s).Me(ctx)
		wantAPIError(t, err, http.StatusUnauthorized, client.CodeUnauthorized)
	}
	if _, err := srv.Client(t, tok.Secret).Me(ctx); err != nil {
		t.Fatalf("the API token went with the sessions: %v", err)
	}
	if _, err := admin.Me(ctx); err != nil {
		t.Fatalf("the admin's own session: %v", err)
	}
}

// TestAgentOfDisabledUser: a disabled user's workspace agents are refused
// too (no manifest, no auth key).
func TestAgentOfDisabledUser(t *testing.T) {
	srv := apitest.New(t)
	ctx := context.Background()
	adminTok := srv.Bootstrap(t, "alice", adminPW)
	bob := srv.Client(t, srv.CreateUser(t, adminTok, "bob", memberPW, client.RoleMember))
	ws, err := bob.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", External: true})
	if err != nil {
		t.Fatal(err)
	}
	agent := srv.Client(t, ws.AgentToken)
	if _, err := agent.AgentManifest(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client(t, adminTok).DisableUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	_, err = agent.AgentAuthKey(ctx)
	wantAPIError(t, err, http.StatusUnauthorized, client.CodeAccountDisabled)
}

func TestWorkspaceQuotas(t *testing.T) {
	srv := apitest.New(t, func(o *api.Options) {
		o.Quotas = api.Quotas{MaxWorkspacesPerUser: 3, MaxExternalAgentsPerUser: 2}
		o.Builds = idleQueue(t, o.Store)
	})
	ctx := context.Background()
	adminTok := srv.Bootstrap(t, "alice", adminPW)
	alice := srv.Client(t, adminTok) // admins are bound too
	pushTemplate(t, srv)
	for _, name := range []string{"ext1", "ext2"} {
		if _, err := alice.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: name, External: true}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := alice.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "ext3", External: true})
	e := wantAPIError(t, err, http.StatusConflict, client.CodeQuotaExceeded)
	if !strings.Contains(e.Message, "2 external agents") {
		t.Fatalf("message %q does not say which quota", e.Message)
	}
	if _, err := alice.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "t1", Template: "base"}); err != nil {
		t.Fatalf("third workspace, from a template: %v", err)
	}
	_, err = alice.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "t2", Template: "base"})
	e = wantAPIError(t, err, http.StatusConflict, client.CodeQuotaExceeded)
	if !strings.Contains(e.Message, "3 workspaces") {
		t.Fatalf("message %q does not say which quota", e.Message)
	}
	if n := countRows(t, srv, "workspaces"); n != 3 {
		t.Fatalf("%d workspaces after refusals, want 3", n)
	}
	// Another user has their own quota; deleting frees a slot.
	bob := srv.Client(t, srv.CreateUser(t, adminTok, "bob", memberPW, client.RoleMember))
	if _, err := bob.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "ext1", External: true}); err != nil {
		t.Fatalf("bob's first workspace: %v", err)
	}
	if _, err := alice.DeleteWorkspace(ctx, "ext1"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "ext3", External: true}); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
}

// TestOneQueuedBuildPerWorkspace: a second start or stop while a build is
// queued is a 409 naming that build; a delete may still queue.
func TestOneQueuedBuildPerWorkspace(t *testing.T) {
	srv := apitest.New(t, func(o *api.Options) { o.Builds = idleQueue(t, o.Store) })
	ctx := context.Background()
	alice := srv.Client(t, srv.Bootstrap(t, "alice", adminPW))
	pushTemplate(t, srv)
	created, err := alice.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", Template: "base"})
	if err != nil || created.Build == nil {
		t.Fatalf("create = %+v, %v", created, err)
	}
	for _, tr := range []string{client.TransitionStart, client.TransitionStop} {
		_, err := alice.CreateBuild(ctx, "dev", tr)
		e := wantAPIError(t, err, http.StatusConflict, client.CodeBuildInProgress)
		if !strings.Contains(e.Message, "build #1 (start) pending") || !strings.Contains(e.Message, "devmesh cancel dev") {
			t.Fatalf("%s: message %q", tr, e.Message)
		}
	}
	if n := countRows(t, srv, "builds"); n != 1 {
		t.Fatalf("%d builds, want 1", n)
	}
	if _, err := alice.DeleteWorkspace(ctx, "dev"); err != nil {
		t.Fatalf("delete behind the queued start: %v", err)
	}
	if _, err := alice.CancelBuild(ctx, "dev", 1); err != nil {
		t.Fatal(err)
	}
}

// idleQueue is a build queue that is never started: builds stay queued.
func idleQueue(t *testing.T, st *store.Store) *builds.Queue {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, err := provision.New(provision.Options{WorkRoot: t.TempDir(), DevmeshBinary: self})
	if err != nil {
		t.Skipf("needs terraform for the build queue: %v", err)
	}
	q, err := builds.New(builds.Options{Store: st, Runner: r, AccessURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// pushTemplate stores a template "base" directly (the queue never runs
// it, so its content does not matter).
func pushTemplate(t *testing.T, srv *apitest.Server) {
	t.Helper()
	_, _, err := srv.Store.PushTemplateVersion(context.Background(), "base",
		store.TemplateVersion{Archive: []byte("x"), ArchiveHash: "x", Variables: "[]", CreatedBy: 1})
	if err != nil {
		t.Fatal(err)
	}
}
