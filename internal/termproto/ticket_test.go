package termproto

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTicketChecks(t *testing.T) {
	t.Parallel()
	pub, priv, _ := ed25519.GenerateKey(nil)
	_, otherPriv, _ := ed25519.GenerateKey(nil)
	now := time.Unix(1_800_000_000, 0)
	base := Ticket{UserID: 7, User: "alice", AgentUUID: "agent-a", SessionID: "s1", Expires: now.Add(TicketLifetime).UnixMilli()}
	cases := []struct {
		name   string
		key    ed25519.PrivateKey
		edit   func(*Ticket)
		mangle func(string) string
		want   error
	}{
		{name: "valid", want: nil},
		{name: "expired", edit: func(t *Ticket) { t.Expires = now.Add(-time.Millisecond).UnixMilli() }, want: ErrTicketExpired},
		{name: "expires now", edit: func(t *Ticket) { t.Expires = now.UnixMilli() }, want: ErrTicketExpired},
		{name: "lifetime too long", edit: func(t *Ticket) { t.Expires = now.Add(time.Hour).UnixMilli() }, want: ErrTicketExpired},
		{name: "wrong agent", edit: func(t *Ticket) { t.AgentUUID = "agent-b" }, want: ErrTicketAgent},
		{name: "wrong user", edit: func(t *Ticket) { t.User, t.UserID = "bob", 8 }, want: ErrTicketUser},
		{name: "admin of another user", edit: func(t *Ticket) { t.User, t.UserID, t.Admin = "root", 1, true }, want: nil},
		{name: "other signer", key: otherPriv, want: ErrTicketInvalid},
		{name: "tampered payload", mangle: func(s string) string {
			p, sig, _ := strings.Cut(s, ".")
			return p[:len(p)-2] + "xx." + sig
		}, want: ErrTicketInvalid},
		{name: "no signature", mangle: func(s string) string { p, _, _ := strings.Cut(s, "."); return p }, want: ErrTicketInvalid},
		{name: "no session", edit: func(t *Ticket) { t.SessionID = "" }, want: ErrTicketInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(pub, "agent-a", "alice", func() time.Time { return now })
			if err != nil {
				t.Fatal(err)
			}
			tk := base
			tk.Nonce = NewNonce()
			if tc.edit != nil {
				tc.edit(&tk)
			}
			key := priv
			if tc.key != nil {
				key = tc.key
			}
			s, err := Sign(key, tk)
			if err != nil {
				t.Fatal(err)
			}
			if tc.mangle != nil {
				s = tc.mangle(s)
			}
			got, err := v.Verify(s)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: err %v, want %v", err, tc.want)
			}
			if err == nil && got.SessionID != tk.SessionID {
				t.Fatalf("Verify returned %+v", got)
			}
			if err != nil && !errors.Is(err, ErrTicket) {
				t.Fatalf("%v does not wrap ErrTicket", err)
			}
		})
	}
}

func TestTicketReplay(t *testing.T) {
	t.Parallel()
	pub, priv, _ := ed25519.GenerateKey(nil)
	now := time.Unix(1_800_000_000, 0)
	clock := now
	v, err := NewVerifier(pub, "agent-a", "alice", func() time.Time { return clock })
	if err != nil {
		t.Fatal(err)
	}
	tk := Ticket{UserID: 7, User: "alice", AgentUUID: "agent-a", SessionID: "s1", Nonce: NewNonce(), Expires: now.Add(TicketLifetime).UnixMilli()}
	s, _ := Sign(priv, tk)
	if _, err := v.Verify(s); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := v.Verify(s); !errors.Is(err, ErrTicketReplay) {
		t.Fatalf("second use: %v, want replay", err)
	}
	// A fresh nonce for the same session is a new ticket.
	tk.Nonce = NewNonce()
	s2, _ := Sign(priv, tk)
	if _, err := v.Verify(s2); err != nil {
		t.Fatalf("new nonce: %v", err)
	}
	// Nonces are forgotten only once their ticket has expired.
	clock = now.Add(TicketLifetime + time.Second)
	if _, err := v.Verify(s); !errors.Is(err, ErrTicketExpired) {
		t.Fatalf("after expiry: %v, want expired", err)
	}
}

func TestFrames(t *testing.T) {
	t.Parallel()
	c, r, err := ParseResize(ResizeFrame(120, 40)[1:])
	if err != nil || c != 120 || r != 40 {
		t.Fatalf("resize round trip: %d %d %v", c, r, err)
	}
	if _, _, err := ParseResize([]byte{0, 0, 0, 1}); err == nil {
		t.Fatal("zero columns accepted")
	}
	if _, _, err := ParseResize([]byte{1}); err == nil {
		t.Fatal("short resize accepted")
	}
	if _, _, err := Split(nil); !errors.Is(err, ErrEmpty) {
		t.Fatal("empty frame accepted")
	}
	typ, p, _ := Split(Frame(Input, []byte("ls\r")))
	if typ != Input || string(p) != "ls\r" {
		t.Fatalf("split: %q %q", typ, p)
	}
}
