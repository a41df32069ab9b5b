package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"tailscale.com/tailcfg"
	"tailscale.com/types/key"

	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/secret"
)

// serveRegister answers POST /machine/register. Refusals are reported in
// RegisterResponse.Error, which the client stops on and shows.
func (s *Server) serveRegister(w http.ResponseWriter, r *http.Request, mk key.MachinePublic) {
	start := time.Now()
	var req tailcfg.RegisterRequest
	r.Body = http.MaxBytesReader(w, r.Body, maxRegisterBody)
	if err := decodeBody(r, &req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "register request too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "malformed register request", http.StatusBadRequest)
		return
	}
	resp, err := s.register(r.Context(), mk, sourceAddr(r.Context()), &req)
	if err != nil {
		if r.Context().Err() != nil {
			http.Error(w, "request canceled", http.StatusRequestTimeout)
			return
		}
		s.log.Error("register", "machine", mk.ShortString(), "err", err)
		resp = tailcfg.RegisterResponse{Error: "internal error registering node"}
	}
	if req.Followup == "" { // not waiting for a user to log in
		s.cfg.Metrics.ObserveRegister(time.Since(start))
	}
	if resp.Error != "" {
		s.cfg.Metrics.Refused(refusalReason(resp.Error))
		s.log.Info("register refused", "machine", mk.ShortString(), "node", req.NodeKey.ShortString(), "reason", resp.Error)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(resp)
}

func refuse(format string, args ...any) tailcfg.RegisterResponse {
	return tailcfg.RegisterResponse{Error: fmt.Sprintf(format, args...)}
}

func (s *Server) register(ctx context.Context, mk key.MachinePublic, src netip.Addr, req *tailcfg.RegisterRequest) (tailcfg.RegisterResponse, error) {
	now := time.Now()
	switch {
	case req.Version < MinCapVersion:
		return refuse("client too old: capability version %d, devmesh needs %d or newer", req.Version, MinCapVersion), nil
	case req.NodeKey.IsZero():
		return refuse("register request has no node key"), nil
	}
	if !req.Expiry.IsZero() && req.Expiry.Before(now) {
		return s.logout(ctx, mk, req)
	}
	if n := s.reg.NodeByKey(req.NodeKey); n != nil {
		if n.MachineKey != mk {
			return refuse("node key is registered to another machine"), nil
		}
		if n.Expired(now) {
			return tailcfg.RegisterResponse{NodeKeyExpired: true}, nil
		}
		return s.authorizedResponse(n), nil
	}
	var old *Node
	if !req.OldNodeKey.IsZero() {
		old = s.reg.NodeByKey(req.OldNodeKey)
		if old != nil && old.MachineKey != mk {
			return refuse("old node key is registered to another machine"), nil
		}
	}
	if req.Auth != nil && req.Auth.AuthKey != "" {
		return s.registerWithAuthKey(ctx, mk, req, old)
	}
	if req.Followup != "" {
		return s.awaitInteractive(ctx, mk, req)
	}
	return s.startInteractive(mk, src, req, old), nil
}

// registerWithAuthKey creates a node owned by the key's owner, or, for a
// key rotation, moves the old node to the new key (same ID, addresses).
func (s *Server) registerWithAuthKey(ctx context.Context, mk key.MachinePublic, req *tailcfg.RegisterRequest, old *Node) (tailcfg.RegisterResponse, error) {
	hash := secret.Hash(strings.TrimSpace(req.Auth.AuthKey))
	if old != nil {
		ak, err := s.cfg.Store.CheckAuthKey(ctx, hash)
		if err != nil {
			return authKeyRefusal(err)
		}
		if ak.UserID != old.Owner || ak.AgentID != old.AgentID {
			return refuse("auth key belongs to another owner than this node"), nil
		}
		if _, err := s.cfg.Store.ConsumeAuthKey(ctx, hash); err != nil {
			return authKeyRefusal(err)
		}
		n, err := s.rotateKey(ctx, old, req.NodeKey)
		if errors.Is(err, errNodeGone) {
			return refuse("this node was deleted; register it as a new node"), nil
		}
		if err != nil {
			return tailcfg.RegisterResponse{}, err
		}
		return s.authorizedResponse(n), nil
	}
	n, err := s.createNode(ctx, mk, req, hash, 0)
	if err != nil {
		return authKeyRefusal(err)
	}
	return s.authorizedResponse(n), nil
}

func authKeyRefusal(err error) (tailcfg.RegisterResponse, error) {
	for _, e := range []error{store.ErrAuthKeyUnknown, store.ErrAuthKeyExpired, store.ErrAuthKeyUsed, store.ErrAuthKeyRevoked} {
		if errors.Is(err, e) {
			return refuse("invalid auth key: %v", e), nil
		}
	}
	if errors.Is(err, store.ErrConflict) {
		return refuse("node key already registered"), nil
	}
	return tailcfg.RegisterResponse{}, err
}

// createNode persists a new node and adds it to the tailnet. The owner
// comes from the auth key (authKeyHash) or is ownerID.
func (s *Server) createNode(ctx context.Context, mk key.MachinePublic, req *tailcfg.RegisterRequest, authKeyHash string, ownerID int64) (*Node, error) {
	s.createMu.Lock()
	defer s.createMu.Unlock()
	hostname := "node"
	if req.Hostinfo != nil && req.Hostinfo.Hostname != "" {
		hostname = req.Hostinfo.Hostname
	}
	hi, _ := json.Marshal(req.Hostinfo)
	if req.Hostinfo == nil {
		hi = []byte("{}")
	}
	sn := store.Node{
		UserID:     ownerID,
		MachineKey: mk.String(),
		NodeKey:    req.NodeKey.String(),
		Hostname:   hostname,
		Hostinfo:   string(hi),
		Ephemeral:  req.Ephemeral,
		CapVersion: int(req.Version),
	}
	// The given name depends on the owner, known only once the key is
	// read; CreateNode consumes the key, so pick the name from a
	// provisional owner and fix it below if the key names another.
	if authKeyHash != "" {
		ak, err := s.cfg.Store.CheckAuthKey(ctx, authKeyHash)
		if err != nil {
			return nil, err
		}
		sn.UserID, sn.AgentID = ak.UserID, ak.AgentID
	}
	if err := s.ensureUser(ctx, sn.UserID); err != nil {
		return nil, err
	}
	if sn.AgentID != 0 {
		name, err := s.agentName(ctx, sn.AgentID)
		if err != nil {
			return nil, err
		}
		if name != "" {
			hostname = name
		}
	}
	sn.GivenName = s.uniqueGivenName(sn.UserID, hostname)
	if sn.AgentID == 0 && s.cfg.NodeKeyExpiry > 0 {
		sn.KeyExpiry = time.Now().Add(s.cfg.NodeKeyExpiry)
	}
	created, _, err := s.cfg.Store.CreateNode(ctx, sn, authKeyHash, allocAddresses)
	if err != nil {
		return nil, err
	}
	n, err := nodeFromStore(created)
	if err != nil {
		return nil, err
	}
	s.reg.Upsert(n)
	s.log.Info("node registered", "node", n.ID, "owner", n.Owner, "agent", n.AgentID, "name", n.GivenName, "ephemeral", n.Ephemeral)
	return s.reg.Node(n.ID), nil
}

func (s *Server) ensureUser(ctx context.Context, id int64) error {
	u, err := s.cfg.Store.UserByID(ctx, id)
	if err != nil {
		return fmt.Errorf("load node owner: %w", err)
	}
	s.reg.SetUser(userFromStore(u))
	return nil
}

// agentName is the DNS label of an agent's node: the workspace's name for
// its first agent (by name), so that it resolves as WS.OWNER.<domain>
// and, for its owner, WS.<domain>; WS-AGENT for any other. "" if the
// agent is gone (its key outlived it): the reported hostname then stays.
func (s *Server) agentName(ctx context.Context, agentID int64) (string, error) {
	a, err := s.cfg.Store.AgentByID(ctx, agentID)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("load the node's agent: %w", err)
	}
	ws, err := s.cfg.Store.WorkspaceByID(ctx, a.WorkspaceID)
	if err != nil {
		return "", fmt.Errorf("load the agent's workspace: %w", err)
	}
	agents, err := s.cfg.Store.ListAgents(ctx, a.WorkspaceID)
	if err != nil {
		return "", fmt.Errorf("list the workspace's agents: %w", err)
	}
	if len(agents) == 0 || agents[0].ID == a.ID {
		return ws.Name, nil
	}
	return ws.Name + "-" + a.Name, nil
}

// uniqueGivenName derives a DNS label from hostname, unique among the
// owner's nodes.
func (s *Server) uniqueGivenName(owner int64, hostname string) string {
	base := sanitizeHostname(hostname)
	taken := map[string]bool{}
	for _, n := range s.reg.Nodes(owner) {
		taken[n.GivenName] = true
	}
	name := base
	for i := 2; taken[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	return name
}

// errNodeGone reports that the node was deleted while it was being
// changed.
var errNodeGone = errors.New("node was deleted")

// rotateKey moves node id to a new node key and renews its expiry. It
// returns errNodeGone if the node was deleted meanwhile.
func (s *Server) rotateKey(ctx context.Context, old *Node, newKey key.NodePublic) (*Node, error) {
	var expiry time.Time
	if old.AgentID == 0 && s.cfg.NodeKeyExpiry > 0 {
		expiry = time.Now().Add(s.cfg.NodeKeyExpiry)
	}
	if err := s.cfg.Store.SetNodeKey(ctx, int64(old.ID), newKey.String(), expiry); errors.Is(err, store.ErrNotFound) {
		return nil, errNodeGone
	} else if err != nil {
		return nil, err
	}
	n, ok := s.reg.Update(old.ID, func(n *Node) Change {
		n.NodeKey, n.KeyExpiry = newKey, expiry
		return Change{Whole: true}
	})
	if !ok {
		return nil, errNodeGone
	}
	s.log.Info("node key rotated", "node", old.ID)
	return n, nil
}

// logout expires the node (deletes it if ephemeral).
func (s *Server) logout(ctx context.Context, mk key.MachinePublic, req *tailcfg.RegisterRequest) (tailcfg.RegisterResponse, error) {
	n := s.reg.NodeByKey(req.NodeKey)
	if n == nil {
		return tailcfg.RegisterResponse{}, nil
	}
	if n.MachineKey != mk {
		return refuse("node key is registered to another machine"), nil
	}
	if n.Ephemeral {
		return tailcfg.RegisterResponse{}, s.DeleteNode(ctx, int64(n.ID))
	}
	// Clamp to now: the client sends a date in 1970 (Headscale #3299).
	now := time.Now()
	if err := s.cfg.Store.SetNodeExpiry(ctx, int64(n.ID), now); errors.Is(err, store.ErrNotFound) {
		return tailcfg.RegisterResponse{}, nil // deleted meanwhile: logged out for good
	} else if err != nil {
		return tailcfg.RegisterResponse{}, err
	}
	s.reg.Update(n.ID, func(n *Node) Change {
		n.KeyExpiry = now
		return Change{Whole: true}
	})
	s.log.Info("node logged out", "node", n.ID)
	return tailcfg.RegisterResponse{}, nil
}

func (s *Server) authorizedResponse(n *Node) tailcfg.RegisterResponse {
	u := s.reg.User(n.Owner)
	return tailcfg.RegisterResponse{
		User:              tailcfg.User{ID: tailcfg.UserID(u.ID), DisplayName: u.Username},
		Login:             tailcfg.Login{ID: tailcfg.LoginID(u.ID), Provider: "devmesh", LoginName: u.Username, DisplayName: u.Username},
		MachineAuthorized: true,
	}
}
