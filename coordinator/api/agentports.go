package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/store"
)

// Bounds of a ports report's strings.
const (
	maxPortProcessLen      = 64
	maxPortsUnsupportedLen = 256
)

// handleAgentPorts records the TCP ports listening in the agent's
// workspace; each report replaces the last.
func (a *API) handleAgentPorts(w http.ResponseWriter, r *http.Request, c agentCaller) error {
	var req client.AgentPorts
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	ports, err := validPorts(req)
	if err != nil {
		return err
	}
	b, err := json.Marshal(ports)
	if err != nil {
		return err
	}
	err = a.store.SetAgentPorts(r.Context(), store.AgentPorts{AgentID: c.agent.ID, Ports: string(b),
		Unsupported: req.Unsupported, UpdatedAt: time.Now()})
	if err != nil {
		return fmt.Errorf("record listening ports: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// validPorts checks a report and returns its ports sorted by port and
// address.
func validPorts(req client.AgentPorts) ([]client.ListeningPort, error) {
	if len(req.Ports) > client.MaxListeningPorts {
		return nil, badRequest("%d ports: at most %d", len(req.Ports), client.MaxListeningPorts)
	}
	if len(req.Unsupported) > maxPortsUnsupportedLen || !utf8.ValidString(req.Unsupported) {
		return nil, badRequest("unsupported: at most %d bytes of UTF-8", maxPortsUnsupportedLen)
	}
	ports := make([]client.ListeningPort, 0, len(req.Ports))
	for i, p := range req.Ports {
		if p.Port < 1 || p.Port > 65535 {
			return nil, badRequest("ports[%d]: port %d out of range 1-65535", i, p.Port)
		}
		if _, err := netip.ParseAddr(p.Address); err != nil {
			return nil, badRequest("ports[%d]: address %q: not an IP address", i, p.Address)
		}
		if len(p.Process) > maxPortProcessLen || !utf8.ValidString(p.Process) {
			return nil, badRequest("ports[%d]: process: at most %d bytes of UTF-8", i, maxPortProcessLen)
		}
		ports = append(ports, p)
	}
	slices.SortFunc(ports, func(a, b client.ListeningPort) int {
		if a.Port != b.Port {
			return a.Port - b.Port
		}
		return strings.Compare(a.Address, b.Address)
	})
	return ports, nil
}

// fillPorts adds the listening ports connected agents reported to out.
// A disconnected agent's last report is stale, and left out.
func (a *API) fillPorts(ctx context.Context, out *client.Workspace) error {
	for i := range out.Agents {
		ag := &out.Agents[i]
		if ag.Status != client.AgentConnected {
			continue
		}
		p, err := a.store.AgentPortsOf(ctx, ag.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("listening ports of agent %d: %w", ag.ID, err)
		}
		if err := json.Unmarshal([]byte(p.Ports), &ag.ListeningPorts); err != nil {
			return fmt.Errorf("agent %d: stored ports: %w", ag.ID, err)
		}
		ag.PortsUnsupported = p.Unsupported
	}
	return nil
}
