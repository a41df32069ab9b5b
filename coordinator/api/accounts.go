package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
)

// Quotas bound what one user may own, admins included. Zero fields are
// unlimited.
type Quotas struct {
	// MaxWorkspacesPerUser bounds a user's workspaces of every kind.
	MaxWorkspacesPerUser int
	// MaxExternalAgentsPerUser bounds the agents of a user's external
	// (bring-your-own-machine) workspaces, one per workspace.
	MaxExternalAgentsPerUser int
}

// accountRoutes registers the admins' account management.
func (a *API) accountRoutes() {
	m := a.mux
	m.Handle("POST /api/v1/users/{name}/disable", a.admin(a.handleDisableUser))
	m.Handle("POST /api/v1/users/{name}/enable", a.admin(a.handleEnableUser))
	m.Handle("DELETE /api/v1/users/{name}", a.admin(a.handleDeleteUser))
	m.Handle("DELETE /api/v1/users/{name}/sessions", a.admin(a.handleRevokeSessions))
}

func errAccountDisabled(name string) *apiError {
	return newError(http.StatusUnauthorized, client.CodeAccountDisabled,
		"account %q is disabled; ask an admin to enable it", name)
}

var errLastAdmin = newError(http.StatusConflict, client.CodeLastAdmin,
	"that would leave the server without an enabled admin; make another user an admin first")

// pathUser returns the user named in the path.
func (a *API) pathUser(r *http.Request) (store.User, error) {
	name := r.PathValue("name")
	u, err := a.store.UserByName(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return u, newError(http.StatusNotFound, client.CodeNotFound, "no user called %q", name)
	}
	if err != nil {
		return u, fmt.Errorf("look up user: %w", err)
	}
	return u, nil
}

// notSelf refuses an admin's action on their own account.
func notSelf(c caller, u store.User, action string) error {
	if u.ID == c.user.ID {
		return newError(http.StatusConflict, client.CodeLastAdmin,
			"you cannot %s your own account; ask another admin", action)
	}
	return nil
}

// handleDisableUser disables an account. The store flag alone stops its
// tokens (authenticate), logins (checkPassword), auth keys and new nodes
// (store.CreateNode); its existing nodes are then logged out (their keys
// expire), which their map streams tell them and their peers at once, and
// which ends their DERP admission.
func (a *API) handleDisableUser(w http.ResponseWriter, r *http.Request, c caller) error {
	u, err := a.pathUser(r)
	if err != nil {
		return err
	}
	if err := notSelf(c, u, "disable"); err != nil {
		return err
	}
	ctx := r.Context()
	u, err = a.store.SetUserDisabled(ctx, u.ID, true)
	if errors.Is(err, store.ErrLastAdmin) {
		return errLastAdmin
	}
	if err != nil {
		return fmt.Errorf("disable user: %w", err)
	}
	a.control.SetUser(u)
	expired, err := a.control.ExpireUserNodes(context.WithoutCancel(ctx), u.ID)
	a.log.Info("disabled user", "username", u.Username, "by", c.user.Username, "nodes_logged_out", expired)
	if err != nil {
		return fmt.Errorf("log out the user's nodes: %w", err)
	}
	writeJSON(w, http.StatusOK, userJSON(u))
	return nil
}

func (a *API) handleEnableUser(w http.ResponseWriter, r *http.Request, c caller) error {
	u, err := a.pathUser(r)
	if err != nil {
		return err
	}
	u, err = a.store.SetUserDisabled(r.Context(), u.ID, false)
	if err != nil {
		return fmt.Errorf("enable user: %w", err)
	}
	a.control.SetUser(u)
	a.log.Info("enabled user", "username", u.Username, "by", c.user.Username)
	writeJSON(w, http.StatusOK, userJSON(u))
	return nil
}

// handleDeleteUser deletes an account that owns no workspaces, with its
// tokens, auth keys and nodes.
func (a *API) handleDeleteUser(w http.ResponseWriter, r *http.Request, c caller) error {
	u, err := a.pathUser(r)
	if err != nil {
		return err
	}
	if err := notSelf(c, u, "delete"); err != nil {
		return err
	}
	ctx := r.Context()
	if err := a.store.CheckDeleteUser(ctx, u.ID); err != nil {
		return deleteUserError(u, err)
	}
	// Log the nodes out first, so that they and their peers are told;
	// removing them (below) only ends their streams.
	if _, err := a.control.ExpireUserNodes(context.WithoutCancel(ctx), u.ID); err != nil {
		return fmt.Errorf("log out the user's nodes: %w", err)
	}
	err = a.store.DeleteUser(ctx, u.ID)
	if err != nil {
		return deleteUserError(u, err)
	}
	// The rows of the user's nodes went with the user; take the nodes
	// off the live tailnet too.
	removed, err := a.dropUserNodes(context.WithoutCancel(ctx), u.ID)
	a.log.Info("deleted user", "username", u.Username, "by", c.user.Username, "nodes_removed", removed)
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteUserError turns the store's refusal to delete u into an API error.
func deleteUserError(u store.User, err error) error {
	switch {
	case errors.Is(err, store.ErrUserHasWorkspaces):
		return newError(http.StatusConflict, client.CodeUserHasWorkspaces,
			"user %q owns workspaces; delete them first (or disable the user instead)", u.Username)
	case errors.Is(err, store.ErrUserHasTemplates):
		return newError(http.StatusConflict, client.CodeUserHasWorkspaces,
			"user %q pushed templates, which keep their author; disable the user instead", u.Username)
	case errors.Is(err, store.ErrLastAdmin):
		return errLastAdmin
	case errors.Is(err, store.ErrNotFound):
		return newError(http.StatusNotFound, client.CodeNotFound, "no user called %q", u.Username)
	}
	return fmt.Errorf("delete user: %w", err)
}

func (a *API) handleRevokeSessions(w http.ResponseWriter, r *http.Request, c caller) error {
	u, err := a.pathUser(r)
	if err != nil {
		return err
	}
	n, err := a.store.DeleteUserSessions(r.Context(), u.ID)
	if err != nil {
		return fmt.Errorf("revoke sessions: %w", err)
	}
	a.log.Info("revoked sessions", "username", u.Username, "by", c.user.Username, "sessions", n)
	writeJSON(w, http.StatusOK, client.RevokedSessions{Revoked: n})
	return nil
}

// dropUserNodes removes every node the user owns (their devices and
// their workspaces' agents) from the store and the tailnet through the
// control plane's node deletion, and returns how many it removed. Call
// ExpireUserNodes first: a removed node's stream just ends, leaving it
// its last netmap. A node
// registering right now may be in the registry before the store query saw
// it, or the other way round: take both.
func (a *API) dropUserNodes(ctx context.Context, userID int64) (int, error) {
	ids := map[int64]bool{}
	nodes, err := a.store.ListUserNodes(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("list nodes of user %d: %w", userID, err)
	}
	for _, n := range nodes {
		ids[n.ID] = true
	}
	for _, n := range a.control.Registry().Nodes(userID) {
		ids[int64(n.ID)] = true
	}
	removed := 0
	var errs []error
	for id := range ids {
		if err := a.control.DeleteNode(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("delete node %d: %w", id, err))
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// quotaError turns the store's quota refusal into an API error.
func quotaError(err error) error {
	var qe *store.QuotaError
	if errors.As(err, &qe) {
		return newError(http.StatusConflict, client.CodeQuotaExceeded,
			"you have %d %s, the most this server allows per user; delete one first (an admin can raise the limit)", qe.Limit, qe.What)
	}
	return nil
}
