package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/secret"
)

// Auth key expiries.
const (
	defaultAuthKeyExpiry = time.Hour
	maxAuthKeyExpiry     = 90 * 24 * time.Hour
)

func authKeyJSON(k store.AuthKey) client.AuthKey {
	return client.AuthKey{
		ID:        k.ID,
		Prefix:    k.Prefix,
		Reusable:  k.Reusable,
		Ephemeral: k.Ephemeral,
		CreatedAt: k.CreatedAt,
		ExpiresAt: k.ExpiresAt,
		UsedAt:    k.UsedAt,
		RevokedAt: k.RevokedAt,
	}
}

func (a *API) handleCreateAuthKey(w http.ResponseWriter, r *http.Request, c caller) error {
	var req client.CreateAuthKeyRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	expiry, err := parseLifetime("expiry", req.Expiry, defaultAuthKeyExpiry, maxAuthKeyExpiry)
	if err != nil {
		return err
	}
	full, id := secret.New(authKeyPrefix)
	k, err := a.store.CreateAuthKey(r.Context(), store.AuthKey{
		UserID:     c.user.ID,
		Prefix:     authKeyPrefix + "_" + id,
		SecretHash: secret.Hash(full),
		Reusable:   req.Reusable,
		Ephemeral:  req.Ephemeral,
		ExpiresAt:  time.Now().Add(expiry),
	})
	if err != nil {
		return fmt.Errorf("create auth key: %w", err)
	}
	a.log.Info("created auth key", "username", c.user.Username, "id", k.ID, "prefix", k.Prefix,
		"reusable", k.Reusable, "ephemeral", k.Ephemeral, "expires", k.ExpiresAt)
	writeJSON(w, http.StatusCreated, client.CreatedAuthKey{AuthKey: authKeyJSON(k), Key: full})
	return nil
}

func (a *API) handleListAuthKeys(w http.ResponseWriter, r *http.Request, c caller) error {
	keys, err := a.store.ListAuthKeys(r.Context(), c.user.ID)
	if err != nil {
		return fmt.Errorf("list auth keys: %w", err)
	}
	out := make([]client.AuthKey, 0, len(keys))
	for _, k := range keys {
		out = append(out, authKeyJSON(k))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) handleRevokeAuthKey(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	err = a.store.RevokeAuthKey(r.Context(), c.user.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return newError(http.StatusNotFound, client.CodeNotFound, "you have no unrevoked auth key with ID %d", id)
	}
	if err != nil {
		return fmt.Errorf("revoke auth key: %w", err)
	}
	a.log.Info("revoked auth key", "username", c.user.Username, "id", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// pathID parses the {id} path segment.
func pathID(r *http.Request) (int64, error) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("invalid ID %q: want a positive number", s)
	}
	return id, nil
}
