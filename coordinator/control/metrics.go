package control

import (
	"strings"

	"github.com/devmesh/devmesh/coordinator/metrics"
)

// Stats reads the registry's state for metrics, under its lock once.
func (r *Registry) Stats() metrics.Tailnet {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := metrics.Tailnet{Nodes: len(r.ix.nodes)}
	for _, n := range r.ix.nodes {
		if n.Online {
			t.Online++
			if n.AgentID != 0 {
				t.AgentsOnline++
			}
		}
	}
	for _, s := range r.sessions {
		t.Streams += s.streams
	}
	return t
}

// refusalReason maps a register refusal's message to a bounded metric
// label (metrics.RefusalReasons).
func refusalReason(msg string) string {
	switch {
	case strings.HasPrefix(msg, "client too old"):
		return "client_too_old"
	case strings.Contains(msg, "no node key"):
		return "no_node_key"
	case strings.Contains(msg, "registered to another machine"):
		return "machine_mismatch"
	case strings.HasPrefix(msg, "invalid auth key"):
		return "invalid_auth_key"
	case strings.Contains(msg, "another owner"):
		return "auth_key_owner"
	case strings.Contains(msg, "node was deleted"):
		return "node_deleted"
	case strings.Contains(msg, "login link"), strings.Contains(msg, "followup"):
		return "login_link"
	case strings.Contains(msg, "logins pending"):
		return "too_many_pending_logins"
	case strings.HasPrefix(msg, "internal error"):
		return "internal"
	}
	return "other"
}
