package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/secret"
)

func TestAuthKeysLifecycle(t *testing.T) {
	srv := apitest.New(t)
	ctx := context.Background()
	session := srv.Bootstrap(t, "alice", adminPW)
	c := srv.Client(t, session)

	created, err := c.CreateAuthKey(ctx, client.CreateAuthKeyRequest{Reusable: true, Ephemeral: true, Expiry: "2h"})
	if err != nil {
		t.Fatal(err)
	}
	k := created.AuthKey
	if !strings.HasPrefix(created.Key, "dmkey_") || !strings.HasPrefix(created.Key, k.Prefix) || len(k.Prefix) >= len(created.Key)/2 {
		t.Fatalf("key %q, prefix %q", created.Key, k.Prefix)
	}
	if !k.Reusable || !k.Ephemeral || time.Until(k.ExpiresAt) > 2*time.Hour || time.Until(k.ExpiresAt) < time.Hour {
		t.Fatalf("created %+v", k)
	}
	me, _ := c.Me(ctx)
	stored, err := srv.Store.CheckAuthKey(ctx, secret.Hash(created.Key))
	if err != nil || stored.UserID != me.ID || !stored.Reusable || !stored.Ephemeral {
		t.Fatalf("store.CheckAuthKey = %+v, %v", stored, err)
	}

	def, err := c.CreateAuthKey(ctx, client.CreateAuthKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(def.AuthKey.ExpiresAt); def.AuthKey.Reusable || def.AuthKey.Ephemeral || d > time.Hour || d < 59*time.Minute {
		t.Fatalf("default key %+v (expires in %v), want single-use, 1h", def.AuthKey, d)
	}
	for _, exp := range []string{"91d", "-1h", "tomorrow"} {
		_, err = c.CreateAuthKey(ctx, client.CreateAuthKeyRequest{Expiry: exp})
		wantAPIError(t, err, http.StatusBadRequest, client.CodeBadRequest)
	}

	resp := call(t, srv, "GET", "/api/v1/authkeys", session, "")
	if resp.status != http.StatusOK || strings.Contains(resp.body, created.Key) || strings.Contains(resp.body, def.Key) {
		t.Fatalf("list: %d %s", resp.status, resp.body)
	}
	keys, err := c.ListAuthKeys(ctx)
	if err != nil || len(keys) != 2 || keys[0].ID != k.ID || keys[0].Prefix != k.Prefix || !keys[0].RevokedAt.IsZero() {
		t.Fatalf("ListAuthKeys = %+v, %v", keys, err)
	}

	// Bob can neither see nor revoke alice's keys.
	bob := srv.Client(t, srv.CreateUser(t, session, "bob", memberPW, client.RoleMember))
	if keys, err := bob.ListAuthKeys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("bob sees %+v, %v", keys, err)
	}
	wantAPIError(t, bob.RevokeAuthKey(ctx, k.ID), http.StatusNotFound, client.CodeNotFound)
	if _, err := srv.Store.CheckAuthKey(ctx, secret.Hash(created.Key)); err != nil {
		t.Fatalf("key unusable after bob's refused revoke: %v", err)
	}

	if err := c.RevokeAuthKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Store.CheckAuthKey(ctx, secret.Hash(created.Key)); !errors.Is(err, store.ErrAuthKeyRevoked) {
		t.Fatalf("CheckAuthKey after revoke: %v, want ErrAuthKeyRevoked", err)
	}
	wantAPIError(t, c.RevokeAuthKey(ctx, k.ID), http.StatusNotFound, client.CodeNotFound)
	keys, _ = c.ListAuthKeys(ctx)
	if keys[0].RevokedAt.IsZero() || !keys[1].RevokedAt.IsZero() {
		t.Fatalf("after revoke: %+v", keys)
	}
	resp = call(t, srv, "DELETE", "/api/v1/authkeys/abc", session, "")
	if resp.status != http.StatusBadRequest {
		t.Fatalf("non-numeric ID: %d", resp.status)
	}
}
