package api_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/internal/secret"
)

// TestSecretsNotStoredInClear scans the database files (main, WAL) for
// every secret and password the API handled: none may appear, while the
// hashes of the bearer secrets must (which proves the scan sees the data).
func TestSecretsNotStoredInClear(t *testing.T) {
	srv := apitest.New(t)
	ctx := context.Background()
	session := srv.Bootstrap(t, "alice", adminPW)
	c := srv.Client(t, session)
	tok, err := c.CreateToken(ctx, client.CreateTokenRequest{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := c.CreateAuthKey(ctx, client.CreateAuthKeyRequest{Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	bobSession := srv.CreateUser(t, session, "bob", memberPW, client.RoleMember)

	var db []byte
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(srv.DBPath + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		db = append(db, b...)
	}
	for name, s := range map[string]string{
		"admin session": session, "API token": tok.Secret, "auth key": key.Key, "member session": bobSession,
		"admin password": adminPW, "member password": memberPW,
	} {
		if bytes.Contains(db, []byte(s)) {
			t.Errorf("%s found in clear in the database", name)
		}
	}
	for name, s := range map[string]string{"API token": tok.Secret, "auth key": key.Key, "admin session": session} {
		if !bytes.Contains(db, []byte(secret.Hash(s))) {
			t.Errorf("hash of %s not found: the scan does not see the data", name)
		}
	}
	if !bytes.Contains(db, []byte("$argon2id$")) {
		t.Error("no argon2id password hash in the database")
	}
}
