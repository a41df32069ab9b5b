package control

import (
	"fmt"
	"strings"

	"tailscale.com/tailcfg"
)

// tailNode renders n as the tailcfg.Node that viewer receives (as a peer,
// or as itself when viewer == n).
func (ix *index) tailNode(n, viewer *Node, env *mapEnv) *tailcfg.Node {
	online := n.Online
	tn := &tailcfg.Node{
		ID:                n.ID,
		StableID:          n.StableID,
		Name:              ix.fqdn(n, env) + ".",
		User:              tailcfg.UserID(n.Owner),
		Key:               n.NodeKey,
		KeyExpiry:         n.KeyExpiry,
		Machine:           n.MachineKey,
		DiscoKey:          n.DiscoKey,
		Addresses:         n.Addresses,
		AllowedIPs:        n.Addresses,
		Endpoints:         n.Endpoints,
		HomeDERP:          n.HomeDERP,
		Created:           n.Created,
		Cap:               n.Cap,
		MachineAuthorized: true,
		Online:            &online,
		ComputedName:      n.GivenName,
	}
	if n.Hostinfo != nil {
		tn.Hostinfo = n.Hostinfo.View()
	} else {
		tn.Hostinfo = (&tailcfg.Hostinfo{Hostname: n.Hostname}).View()
	}
	if wantsLegacyDERP(n, viewer) {
		// Clients before capability 111 read the home region from the
		// legacy magic "DERP" endpoint string.
		tn.LegacyDERPString = fmt.Sprintf("127.3.3.40:%d", n.HomeDERP)
	}
	if !n.LastSeen.IsZero() && !n.Online {
		ls := n.LastSeen
		tn.LastSeen = &ls
	}
	if n.Expired(env.now()) {
		tn.Expired = true
	}
	return tn
}

// fqdn returns n's MagicDNS name without the trailing dot:
// <given-name>.<owner>.<domain>.
func (ix *index) fqdn(n *Node, env *mapEnv) string {
	owner := ix.users[n.Owner].Username
	if owner == "" {
		owner = fmt.Sprintf("user%d", n.Owner)
	}
	return strings.ToLower(n.GivenName + "." + owner + "." + env.domain)
}

// wantsLegacyDERP reports whether viewer reads n's home region from the
// legacy magic "DERP" endpoint string (clients before capability 111).
// The peer cache keys its encodings on it, so tailNode and peerKey must
// agree: both call this.
func wantsLegacyDERP(n, viewer *Node) bool { return viewer.Cap < 111 && n.HomeDERP != 0 }
