package api_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/devmesh/devmesh/coordinator/client"
)

// TestAgentPorts: an agent's report of listening ports is validated,
// stored sorted, and replaced by the next; the manifest tells an external
// workspace's agent that the machine is the workspace.
func TestAgentPorts(t *testing.T) {
	f := newWSFixture(t)
	ctx := context.Background()
	if m, err := f.agent.AgentManifest(ctx); err != nil || !m.External {
		t.Fatalf("manifest of an external workspace: External %v (%v)", m.External, err)
	}
	tooMany := make([]client.ListeningPort, client.MaxListeningPorts+1)
	for i := range tooMany {
		tooMany[i] = client.ListeningPort{Port: i + 1, Address: "127.0.0.1"}
	}
	for name, bad := range map[string]client.AgentPorts{
		"port 0":           {Ports: []client.ListeningPort{{Port: 0, Address: "127.0.0.1"}}},
		"port 65536":       {Ports: []client.ListeningPort{{Port: 65536, Address: "127.0.0.1"}}},
		"bad address":      {Ports: []client.ListeningPort{{Port: 80, Address: "localhost"}}},
		"long process":     {Ports: []client.ListeningPort{{Port: 80, Address: "::", Process: strings.Repeat("p", 65)}}},
		"too many":         {Ports: tooMany},
		"long unsupported": {Unsupported: strings.Repeat("x", 257)},
	} {
		if err := f.agent.PostAgentPorts(ctx, bad); client.ErrorCode(err) != client.CodeBadRequest {
			t.Errorf("%s: %v", name, err)
		}
	}
	ws, _ := f.alice.Workspace(ctx, "dev")
	agentID := ws.Agents[0].ID
	if _, err := f.srv.Store.AgentPortsOf(ctx, agentID); err == nil {
		t.Fatal("bad reports were stored")
	}

	report := client.AgentPorts{Ports: []client.ListeningPort{
		{Port: 8080, Address: "::", Process: "python3"}, {Port: 22, Address: "0.0.0.0", Process: "sshd"},
		{Port: 8080, Address: "0.0.0.0", Process: "python3"},
	}}
	if err := f.agent.PostAgentPorts(ctx, report); err != nil {
		t.Fatal(err)
	}
	got, err := f.srv.Store.AgentPortsOf(ctx, agentID)
	if err != nil {
		t.Fatal(err)
	}
	var ports []client.ListeningPort
	json.Unmarshal([]byte(got.Ports), &ports)
	want := []client.ListeningPort{report.Ports[1], report.Ports[2], report.Ports[0]}
	if !slices.Equal(ports, want) {
		t.Errorf("stored %+v, want %+v", ports, want)
	}
	// The next report replaces it.
	if err := f.agent.PostAgentPorts(ctx, client.AgentPorts{Ports: []client.ListeningPort{}, Unsupported: "not on plan9"}); err != nil {
		t.Fatal(err)
	}
	if got, err := f.srv.Store.AgentPortsOf(ctx, agentID); err != nil || got.Ports != "[]" || got.Unsupported != "not on plan9" {
		t.Errorf("after the second report: %+v (%v)", got, err)
	}
	// Users' tokens are refused.
	if err := f.alice.PostAgentPorts(ctx, report); err == nil {
		t.Error("a user's token reported ports")
	}
}
