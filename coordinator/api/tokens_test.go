package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/client"
)

func TestTokensLifecycle(t *testing.T) {
	srv := apitest.New(t)
	ctx := context.Background()
	session := srv.Bootstrap(t, "alice", adminPW)
	c := srv.Client(t, session)

	created, err := c.CreateToken(ctx, client.CreateTokenRequest{Name: "ci", Lifetime: "7d"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Secret, "dmt_") || created.Token.Name != "ci" {
		t.Fatalf("created %+v", created)
	}
	if d := time.Until(created.Token.ExpiresAt); d < 6*24*time.Hour || d > 7*24*time.Hour {
		t.Fatalf("expires in %v, want 7 days", d)
	}
	withToken := srv.Client(t, created.Secret)
	if me, err := withToken.Me(ctx); err != nil || me.Username != "alice" {
		t.Fatalf("Me with API token = %+v, %v", me, err)
	}

	_, err = c.CreateToken(ctx, client.CreateTokenRequest{Name: "ci"})
	wantAPIError(t, err, http.StatusConflict, client.CodeConflict)
	for _, life := range []string{"366d", "0s", "soon"} {
		_, err = c.CreateToken(ctx, client.CreateTokenRequest{Name: "x", Lifetime: life})
		wantAPIError(t, err, http.StatusBadRequest, client.CodeBadRequest)
	}
	def, err := c.CreateToken(ctx, client.CreateTokenRequest{Name: "default-life"})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(def.Token.ExpiresAt); d < 29*24*time.Hour || d > 30*24*time.Hour {
		t.Fatalf("default lifetime %v, want 30 days", d)
	}

	// Listing shows metadata only: no secret, and no session tokens.
	resp := call(t, srv, "GET", "/api/v1/tokens", session, "")
	if resp.status != http.StatusOK {
		t.Fatalf("list: %d %s", resp.status, resp.body)
	}
	if strings.Contains(resp.body, created.Secret) || strings.Contains(resp.body, "dmt_") || strings.Contains(resp.body, "session") {
		t.Fatalf("token list leaks secrets or sessions: %s", resp.body)
	}
	toks, err := c.ListTokens(ctx)
	if err != nil || len(toks) != 2 || toks[0].Name != "ci" || toks[1].Name != "default-life" {
		t.Fatalf("ListTokens = %+v, %v", toks, err)
	}

	// Another user cannot see or delete alice's tokens.
	bob := srv.Client(t, srv.CreateUser(t, session, "bob", memberPW, client.RoleMember))
	if toks, err := bob.ListTokens(ctx); err != nil || len(toks) != 0 {
		t.Fatalf("bob sees tokens %+v, %v", toks, err)
	}
	wantAPIError(t, bob.DeleteToken(ctx, "ci"), http.StatusNotFound, client.CodeNotFound)

	if err := c.DeleteToken(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	_, err = withToken.Me(ctx)
	wantAPIError(t, err, http.StatusUnauthorized, client.CodeUnauthorized)
	wantAPIError(t, c.DeleteToken(ctx, "ci"), http.StatusNotFound, client.CodeNotFound)
	if toks, _ := c.ListTokens(ctx); len(toks) != 1 {
		t.Fatalf("after delete: %+v", toks)
	}
}
