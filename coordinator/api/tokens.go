package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/secret"
)

// API token lifetimes.
const (
	defaultTokenLifetime = 30 * 24 * time.Hour
	maxTokenLifetime     = 365 * 24 * time.Hour
)

func tokenJSON(t store.Token) client.Token {
	return client.Token{Name: t.Name, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt}
}

func (a *API) handleCreateToken(w http.ResponseWriter, r *http.Request, c caller) error {
	var req client.CreateTokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if !tokenNameRE.MatchString(req.Name) {
		return badRequest("invalid token name %q: use 1-64 letters, digits, '.', '_' and '-'", req.Name)
	}
	life, err := parseLifetime("lifetime", req.Lifetime, defaultTokenLifetime, maxTokenLifetime)
	if err != nil {
		return err
	}
	full, _ := secret.New(apiTokenPrefix)
	tok, err := a.store.CreateToken(r.Context(), store.Token{
		UserID:     c.user.ID,
		Name:       req.Name,
		Kind:       store.TokenAPI,
		SecretHash: secret.Hash(full),
		ExpiresAt:  time.Now().Add(life),
	})
	if errors.Is(err, store.ErrConflict) {
		return newError(http.StatusConflict, client.CodeConflict, "you already have a token named %q", req.Name)
	}
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	a.log.Info("created API token", "username", c.user.Username, "name", tok.Name, "expires", tok.ExpiresAt)
	writeJSON(w, http.StatusCreated, client.CreatedToken{Token: tokenJSON(tok), Secret: full})
	return nil
}

func (a *API) handleListTokens(w http.ResponseWriter, r *http.Request, c caller) error {
	toks, err := a.store.ListTokens(r.Context(), c.user.ID)
	if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	out := make([]client.Token, 0, len(toks))
	for _, t := range toks {
		out = append(out, tokenJSON(t))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) handleDeleteToken(w http.ResponseWriter, r *http.Request, c caller) error {
	name := r.PathValue("name")
	err := a.store.DeleteToken(r.Context(), c.user.ID, name)
	if errors.Is(err, store.ErrNotFound) {
		return newError(http.StatusNotFound, client.CodeNotFound, "you have no token named %q", name)
	}
	if err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	a.log.Info("deleted API token", "username", c.user.Username, "name", name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
