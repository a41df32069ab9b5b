package termproto

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// TicketLifetime is how long a ticket is valid after it is minted.
const TicketLifetime = 60 * time.Second

// maxTicketLifetime bounds the lifetime a verifier accepts, whatever the
// signer wrote: a clock far ahead on the coordinator cannot mint
// long-lived tickets. It also bounds how long a nonce is remembered.
const maxTicketLifetime = 2 * TicketLifetime

// maxTicketLen bounds a ticket's encoded size.
const maxTicketLen = 2048

// Ticket errors. Every failed check wraps ErrTicket.
var (
	ErrTicket        = errors.New("terminal ticket refused")
	ErrTicketExpired = fmt.Errorf("%w: expired", ErrTicket)
	ErrTicketAgent   = fmt.Errorf("%w: minted for another agent", ErrTicket)
	ErrTicketUser    = fmt.Errorf("%w: minted for another user", ErrTicket)
	ErrTicketReplay  = fmt.Errorf("%w: already used", ErrTicket)
	ErrTicketInvalid = fmt.Errorf("%w: malformed or bad signature", ErrTicket)
)

// Ticket lets one user open (or reattach to) one terminal session on one
// agent, once, within TicketLifetime. The coordinator signs it after
// checking that the user may reach the workspace; the agent verifies it.
type Ticket struct {
	UserID int64  `json:"uid"`
	User   string `json:"user"` // username
	// Admin is set when an admin opens another user's workspace
	// (--admins-reach-all); the agent then accepts a user other than
	// the owner.
	Admin     bool   `json:"admin,omitempty"`
	AgentUUID string `json:"agent"`
	SessionID string `json:"sid"`
	Nonce     string `json:"nonce"`
	Expires   int64  `json:"exp"` // Unix milliseconds
}

// ExpiresAt is the ticket's expiry time.
func (t Ticket) ExpiresAt() time.Time { return time.UnixMilli(t.Expires) }

// NewNonce returns a random nonce.
func NewNonce() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var b64 = base64.RawURLEncoding

// Sign encodes t as base64url(JSON) "." base64url(signature).
func Sign(key ed25519.PrivateKey, t Ticket) (string, error) {
	if len(key) != ed25519.PrivateKeySize {
		return "", errors.New("termproto: bad signing key")
	}
	body, err := json.Marshal(t)
	if err != nil {
		return "", err
	}
	payload := b64.EncodeToString(body)
	sig := ed25519.Sign(key, []byte(payload))
	return payload + "." + b64.EncodeToString(sig), nil
}

// Verifier checks tickets for one agent. It remembers the nonces of
// tickets it accepted until they expire, so each is accepted once. It is
// safe for concurrent use.
type Verifier struct {
	pub       ed25519.PublicKey
	agentUUID string
	owner     string // workspace owner's username
	now       func() time.Time

	mu   sync.Mutex
	seen map[string]time.Time // nonce -> expiry; guarded by mu
}

// NewVerifier returns a verifier of tickets signed by pub for the agent
// agentUUID of a workspace owned by owner.
func NewVerifier(pub ed25519.PublicKey, agentUUID, owner string, now func() time.Time) (*Verifier, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("termproto: bad ticket public key")
	}
	if agentUUID == "" || owner == "" {
		return nil, errors.New("termproto: agent and owner are required")
	}
	if now == nil {
		now = time.Now
	}
	return &Verifier{pub: pub, agentUUID: agentUUID, owner: owner, now: now, seen: map[string]time.Time{}}, nil
}

// Verify checks s's signature, expiry, agent and user, and that its nonce
// is new; it then records the nonce.
func (v *Verifier) Verify(s string) (Ticket, error) {
	var t Ticket
	payload, sig, ok := strings.Cut(s, ".")
	if !ok || len(s) > maxTicketLen {
		return t, ErrTicketInvalid
	}
	rawSig, err := b64.DecodeString(sig)
	if err != nil || !ed25519.Verify(v.pub, []byte(payload), rawSig) {
		return t, ErrTicketInvalid
	}
	body, err := b64.DecodeString(payload)
	if err != nil || json.Unmarshal(body, &t) != nil || t.Nonce == "" || t.SessionID == "" {
		return Ticket{}, ErrTicketInvalid
	}
	now := v.now()
	exp := t.ExpiresAt()
	if !now.Before(exp) || exp.Sub(now) > maxTicketLifetime {
		return Ticket{}, ErrTicketExpired
	}
	if t.AgentUUID != v.agentUUID {
		return Ticket{}, ErrTicketAgent
	}
	if t.User != v.owner && !t.Admin {
		return Ticket{}, ErrTicketUser
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for n, e := range v.seen {
		if !now.Before(e) {
			delete(v.seen, n)
		}
	}
	if _, dup := v.seen[t.Nonce]; dup {
		return Ticket{}, ErrTicketReplay
	}
	v.seen[t.Nonce] = exp
	return t, nil
}
