package tunnel

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/node"
)

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]Target{
		"dev":      {Workspace: "dev"},
		"dev.main": {Workspace: "dev", Agent: "main"},
		" dev ":    {Workspace: "dev"},
		// Admins name another user's workspace as OWNER/WS.
		"alice/dev":      {Workspace: "alice/dev"},
		"alice/dev.main": {Workspace: "alice/dev", Agent: "main"},
	} {
		got, err := ParseTarget(in)
		if err != nil || got != want {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".main", "dev.", "a.b.c", "/dev", "a/b/c", "al.ice/dev", "alice/", "user@dev", "dev:22"} {
		if _, err := ParseTarget(in); err == nil {
			t.Errorf("ParseTarget(%q) succeeded", in)
		}
	}
	for in, want := range map[string]Target{
		"devmesh.dev":      {Workspace: "dev"},
		"devmesh.dev.main": {Workspace: "dev", Agent: "main"},
		"DEVMESH.dev":      {Workspace: "dev"},
		"dev":              {Workspace: "dev"},
		"devmesh":          {Workspace: "devmesh"},
	} {
		got, err := ParseAlias(in)
		if err != nil || got != want {
			t.Errorf("ParseAlias(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	if a := (Target{"Dev", "main"}).Alias(); a != "devmesh.dev.main" {
		t.Errorf("Alias = %q", a)
	}
}

func TestEndpointFor(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	hostKey := string(ssh.MarshalAuthorizedKey(newTestKey(t)))
	up := func(name string) client.Agent {
		return client.Agent{Name: name, Status: client.AgentConnected, Addresses: []string{"fd7a:115c:a1e0::5/128", "100.64.0.5/32"}, SSHHostKey: hostKey}
	}
	one := client.Workspace{Name: "dev", Agents: []client.Agent{up("main")}}
	two := client.Workspace{Name: "dev", Agents: []client.Agent{up("main"), up("gpu")}}
	down := client.Workspace{Name: "dev", Agents: []client.Agent{{Name: "main", Status: client.AgentDisconnected,
		Addresses: []string{"100.64.0.5"}, LastSeen: now.Add(-3 * time.Minute)}}}
	never := client.Workspace{Name: "dev", Agents: []client.Agent{{Name: "main", Status: client.AgentConnecting}}}
	nokey := client.Workspace{Name: "dev", Agents: []client.Agent{{Name: "main", Status: client.AgentConnected, Addresses: []string{"100.64.0.5"}}}}

	for _, tc := range []struct {
		name    string
		ws      client.Workspace
		target  Target
		hostKey bool
		wantErr string
		is      error
	}{
		{name: "only agent", ws: one, target: Target{Workspace: "dev"}},
		{name: "named agent", ws: two, target: Target{"dev", "gpu"}},
		{name: "ambiguous", ws: two, target: Target{Workspace: "dev"}, wantErr: "workspace dev has several agents (main, gpu): name one as dev.AGENT"},
		{name: "no such agent", ws: one, target: Target{"dev", "gpu"}, wantErr: "workspace dev has no agent gpu (its agents: main)", is: ErrNotFound},
		{name: "disconnected", ws: down, target: Target{Workspace: "dev"}, wantErr: "agent main of dev is disconnected, last seen 3m ago", is: ErrUnavailable},
		{name: "never connected", ws: never, target: Target{Workspace: "dev"}, wantErr: "agent main of dev has not connected yet", is: ErrUnavailable},
		{name: "no host key, ping", ws: nokey, target: Target{Workspace: "dev"}},
		{name: "no host key, ssh", ws: nokey, target: Target{Workspace: "dev"}, hostKey: true, wantErr: "agent main of dev has not published its SSH host key yet", is: ErrUnavailable},
		{name: "no agents", ws: client.Workspace{Name: "dev"}, target: Target{Workspace: "dev"}, wantErr: "workspace dev has no agents"},
	} {
		ep, err := endpointFor(tc.ws, tc.target, now, tc.hostKey)
		if tc.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%s: err %v is not %v", tc.name, err, tc.is)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if ep.Addr != netip.MustParseAddr("100.64.0.5") || ep.Target.Agent == "" {
			t.Errorf("%s: endpoint %+v", tc.name, ep)
		}
	}
}

func TestAgo(t *testing.T) {
	now := time.Now()
	for d, want := range map[time.Duration]string{
		0: "just now", 45 * time.Second: "45s ago", 3 * time.Minute: "3m ago",
		5 * time.Hour: "5h ago", 100 * time.Hour: "4d ago",
	} {
		if got := Ago(now, now.Add(-d)); got != want {
			t.Errorf("Ago(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestParseForwardSpec(t *testing.T) {
	for in, want := range map[string]string{
		"8080:80":          "tcp 127.0.0.1:8080 -> 80",
		"0:80":             "tcp 127.0.0.1:0 -> 80",
		"0.0.0.0:8080:80":  "tcp 0.0.0.0:8080 -> 80",
		"localhost:1:2":    "tcp 127.0.0.1:1 -> 2",
		"[::1]:8080:80":    "tcp [::1]:8080 -> 80",
		"::1:8080:80":      "tcp [::1]:8080 -> 80",
		"10.1.2.3:65535:1": "tcp 10.1.2.3:65535 -> 1",
	} {
		s, err := ParseForwardSpec("tcp", in)
		if err != nil || s.String() != want {
			t.Errorf("ParseForwardSpec(%q) = %v, %v; want %s", in, s, err, want)
		}
	}
	for _, in := range []string{"", "80", "8080:", ":80", "8080:0", "8080:70000", "x:80", "host.example:1:2", "1:2:3:x", "-1:80"} {
		if s, err := ParseForwardSpec("udp", in); err == nil {
			t.Errorf("ParseForwardSpec(%q) = %v, want an error", in, s)
		} else if !strings.Contains(err.Error(), "--udp") {
			t.Errorf("error for %q does not name the flag: %v", in, err)
		}
	}
	a, _ := ParseForwardSpec("tcp", "8080:80")
	b, _ := ParseForwardSpec("tcp", "8080:81")
	c, _ := ParseForwardSpec("udp", "8080:81")
	if err := CheckForwardSpecs([]ForwardSpec{a, c}); err != nil {
		t.Errorf("tcp and udp on one port: %v", err)
	}
	if err := CheckForwardSpecs([]ForwardSpec{a, b}); err == nil {
		t.Error("two tcp forwards on one port accepted")
	}
}

func TestShellQuote(t *testing.T) {
	if ShellQuote([]string{"echo $HOME | wc -c"}) != "echo $HOME | wc -c" {
		t.Error("a single argument was quoted")
	}
	args := []string{"printf", "%s|", "a b", "it's", "", "$HOME", "x\ny", "plain-word_1.2"}
	out, err := exec.Command("sh", "-c", ShellQuote(args)).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "a b|it's||$HOME|x\ny|plain-word_1.2|"; string(out) != want {
		t.Errorf("sh -c %s printed %q, want %q", ShellQuote(args), out, want)
	}
}

func TestRelayHints(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		r    *node.NetReport
		want string
	}{
		{nil, "Could not check"},
		{&node.NetReport{UDP: false}, "UDP looks blocked"},
		{&node.NetReport{UDP: true, MappingVariesByDestIP: &yes}, "hard, endpoint-dependent NAT"},
		{&node.NetReport{UDP: true, MappingVariesByDestIP: &no}, "the NAT looks easy"},
		{&node.NetReport{UDP: true}, "could not be told"},
	} {
		if got := strings.Join(RelayHints(tc.r), " "); !strings.Contains(got, tc.want) {
			t.Errorf("RelayHints(%+v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}

func newTestKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
