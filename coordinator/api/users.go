package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
)

func userJSON(u store.User) client.User {
	out := client.User{ID: u.ID, Username: u.Username, Role: u.Role, CreatedAt: u.CreatedAt, Status: client.UserActive}
	if u.Disabled() {
		out.Status, out.DisabledAt = client.UserDisabled, u.DisabledAt
	}
	return out
}

func (a *API) handleCreateUser(w http.ResponseWriter, r *http.Request, c caller) error {
	var req client.CreateUserRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Role == "" {
		req.Role = client.RoleMember
	}
	if req.Role != client.RoleAdmin && req.Role != client.RoleMember {
		return badRequest("invalid role %q: want %s or %s", req.Role, client.RoleAdmin, client.RoleMember)
	}
	if err := validateNewUser(req.Username, req.Password); err != nil {
		return err
	}
	ctx := r.Context()
	// Cheap check first, so a taken name costs no hashing; the insert
	// below still catches a race.
	if _, err := a.store.UserByName(ctx, req.Username); err == nil {
		return errUserExists(req.Username)
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("look up user: %w", err)
	}
	hash, err := a.hashPassword(ctx, req.Password)
	if err != nil {
		return err
	}
	u, err := a.store.CreateUser(ctx, req.Username, hash, req.Role)
	if errors.Is(err, store.ErrConflict) {
		return errUserExists(req.Username)
	}
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	a.control.SetUser(u)
	a.log.Info("created user", "username", u.Username, "role", u.Role, "by", c.user.Username)
	writeJSON(w, http.StatusCreated, userJSON(u))
	return nil
}

func errUserExists(name string) *apiError {
	return newError(http.StatusConflict, client.CodeConflict, "user %q already exists", name)
}

func (a *API) handleListUsers(w http.ResponseWriter, r *http.Request, _ caller) error {
	users, err := a.store.ListUsers(r.Context())
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	out := make([]client.User, 0, len(users))
	for _, u := range users {
		out = append(out, userJSON(u))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
