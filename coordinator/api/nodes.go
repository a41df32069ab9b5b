package api

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"tailscale.com/tailcfg"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/control"
)

func (a *API) nodeJSON(n *control.Node, owner string) client.Node {
	out := client.Node{
		ID:        int64(n.ID),
		StableID:  string(n.StableID),
		Name:      a.control.NodeName(n),
		Owner:     owner,
		Agent:     n.IsAgent(),
		Addresses: make([]string, 0, len(n.Addresses)),
		Online:    n.Online,
		LastSeen:  n.LastSeen,
		Ephemeral: n.Ephemeral,
		Hostname:  n.Hostname,
		KeyExpiry: n.KeyExpiry,
		CreatedAt: n.Created,
	}
	for _, p := range n.Addresses {
		out.Addresses = append(out.Addresses, p.Addr().String())
	}
	if hi := n.Hostinfo; hi != nil {
		out.OS = hi.OS
		if hi.Hostname != "" {
			out.Hostname = hi.Hostname
		}
	}
	return out
}

// handleListNodes lists the caller's nodes; with ?all=true, an admin gets
// every user's.
func (a *API) handleListNodes(w http.ResponseWriter, r *http.Request, c caller) error {
	all := false
	if s := r.URL.Query().Get("all"); s != "" {
		var err error
		if all, err = strconv.ParseBool(s); err != nil {
			return badRequest("invalid all=%q: want true or false", s)
		}
	}
	owners := map[int64]string{c.user.ID: c.user.Username}
	ownerID := c.user.ID
	if all {
		if !c.user.IsAdmin() {
			return errForbidden
		}
		users, err := a.store.ListUsers(r.Context())
		if err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		for _, u := range users {
			owners[u.ID] = u.Username
		}
		ownerID = 0 // Registry.Nodes: every owner
	}
	nodes := a.control.Registry().Nodes(ownerID)
	slices.SortFunc(nodes, func(x, y *control.Node) int { return cmp.Compare(x.ID, y.ID) })
	out := make([]client.Node, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, a.nodeJSON(n, owners[n.Owner]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleDeleteNode removes one of the caller's nodes (an admin: any
// node). Someone else's node answers 404, like a missing one, so IDs of
// other users' nodes cannot be probed.
func (a *API) handleDeleteNode(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	n := a.control.Registry().Node(tailcfg.NodeID(id))
	if n == nil || (n.Owner != c.user.ID && !c.user.IsAdmin()) {
		return newError(http.StatusNotFound, client.CodeNotFound, "no node with ID %d", id)
	}
	if err := a.control.DeleteNode(r.Context(), id); err != nil {
		return fmt.Errorf("delete node %d: %w", id, err)
	}
	a.log.Info("deleted node", "node", id, "owner", n.Owner, "by", c.user.Username)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
