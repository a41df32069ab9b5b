package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/devmesh/devmesh/coordinator/store"
)

// ExpireUserNodes logs out every node the user owns (their devices and
// their workspaces' agents), as a client's own logout does: each key
// expires now, which the open map streams tell the node (it must log in
// again) and its peers (they drop it), and DERP stops admitting it.
// Ephemeral nodes are deleted instead. It returns how many nodes it
// expired or deleted. The API calls it when an admin disables or deletes
// the user.
//
// Call it after the store marks the user disabled: holding createMu, it
// waits for a node creation in flight (which passed the store's check
// before the flag) to reach the registry, and later ones are refused by
// the store.
func (s *Server) ExpireUserNodes(ctx context.Context, userID int64) (int, error) {
	s.createMu.Lock()
	defer s.createMu.Unlock()
	now := time.Now()
	done := 0
	var errs []error
	for _, n := range s.reg.Nodes(userID) {
		if n.Ephemeral {
			if err := s.DeleteNode(ctx, int64(n.ID)); err != nil {
				errs = append(errs, fmt.Errorf("delete node %d: %w", n.ID, err))
				continue
			}
			done++
			continue
		}
		if n.Expired(now) {
			continue
		}
		if err := s.cfg.Store.SetNodeExpiry(ctx, int64(n.ID), now); err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, fmt.Errorf("expire node %d: %w", n.ID, err))
			continue
		}
		s.reg.Update(n.ID, func(m *Node) Change {
			m.KeyExpiry = now
			return Change{Whole: true}
		})
		done++
	}
	return done, errors.Join(errs...)
}
