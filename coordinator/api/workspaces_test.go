package api_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"

	"github.com/devmesh/devmesh/coordinator/api"
	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/control"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/secret"
)

// wsFixture is a server with alice (admin) and bob (member), and alice's
// external workspace "dev" with its agent's token.
type wsFixture struct {
	srv        *apitest.Server
	alice, bob *client.Client
	aliceID    int64
	created    client.CreatedWorkspace
	agent      *client.Client
}

func newWSFixture(t *testing.T, configure ...func(*api.Options)) *wsFixture {
	t.Helper()
	srv := apitest.New(t, configure...)
	session := srv.Bootstrap(t, "alice", adminPW)
	f := &wsFixture{srv: srv, alice: srv.Client(t, session)}
	f.bob = srv.Client(t, srv.CreateUser(t, session, "bob", memberPW, client.RoleMember))
	me, err := f.alice.Me(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f.aliceID = me.ID
	f.created, err = f.alice.CreateWorkspace(context.Background(), client.CreateWorkspaceRequest{Name: "dev", External: true})
	if err != nil {
		t.Fatalf("create workspace: %v", err)
	}
	f.agent = srv.Client(t, f.created.AgentToken)
	return f
}

func hostKey(t *testing.T, comment string) (gossh.PublicKey, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pk)))
	if comment != "" {
		return pk, line + " " + comment
	}
	return pk, line
}

func TestCreateExternalWorkspace(t *testing.T) {
	f := newWSFixture(t)
	ctx := context.Background()
	c := f.created
	if !strings.HasPrefix(c.AgentToken, "dma_") || len(c.AgentToken) < 50 {
		t.Fatalf("agent token %q", c.AgentToken)
	}
	ws := c.Workspace
	if ws.Name != "dev" || ws.Owner != "alice" || ws.Template != "" || ws.UUID == "" || len(ws.Agents) != 1 {
		t.Fatalf("created workspace %+v", ws)
	}
	ag := ws.Agents[0]
	if ag.Name != "main" || ag.Status != client.AgentConnecting || ag.Lifecycle != client.LifecycleCreated ||
		ag.Addresses == nil || len(ag.Addresses) != 0 {
		t.Fatalf("new agent %+v", ag)
	}
	// The token is shown once: neither the list nor the store has it.
	got, err := f.alice.Workspace(ctx, "dev")
	if err != nil || got.ID != ws.ID || got.Agents[0].ID != ag.ID {
		t.Fatalf("get workspace: %+v, %v", got, err)
	}
	raw := call(t, f.srv, "GET", "/api/v1/workspaces", mustLogin(t, f.srv, "alice", adminPW), "")
	if raw.status != 200 || strings.Contains(raw.body, c.AgentToken) || !strings.Contains(raw.body, `"status": "connecting"`) {
		t.Fatalf("list: %d %s", raw.status, raw.body)
	}
	if a, err := f.srv.Store.AgentByTokenHash(ctx, secret.Hash(c.AgentToken)); err != nil || a.ID != ag.ID {
		t.Fatalf("agent by token hash: %+v, %v", a, err)
	}

	_, err = f.alice.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", External: true})
	wantAPIError(t, err, http.StatusConflict, client.CodeConflict)
	// Names are per owner.
	if _, err := f.bob.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", External: true}); err != nil {
		t.Fatalf("bob's dev: %v", err)
	}
	if n := countRows(t, f.srv, "workspaces"); n != 2 {
		t.Fatalf("%d workspaces, want 2", n)
	}
}

func TestCreateWorkspaceBadInput(t *testing.T) {
	f := newWSFixture(t)
	ctx := context.Background()
	for _, name := range []string{"", "Dev", "1dev", "-dev", "dev-", "dev.x", "dev/x", "dév", strings.Repeat("a", 33)} {
		_, err := f.alice.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: name, External: true})
		wantAPIError(t, err, http.StatusBadRequest, client.CodeBadRequest)
	}
	if _, err := f.alice.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: strings.Repeat("a", 32), External: true}); err != nil {
		t.Fatalf("32-character name: %v", err)
	}
	// This API runs no build queue.
	_, err := f.alice.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "tpl", Template: "docker"})
	wantAPIError(t, err, http.StatusServiceUnavailable, client.CodeProvisioningDisabled)
	for _, req := range []client.CreateWorkspaceRequest{
		{Name: "x"}, // neither
		{Name: "x", External: true, Template: "docker"},
		{Name: "x", External: true, Variables: map[string]string{"a": "b"}},
	} {
		_, err := f.alice.CreateWorkspace(ctx, req)
		wantAPIError(t, err, http.StatusBadRequest, client.CodeBadRequest)
	}
	r := call(t, f.srv, "POST", "/api/v1/workspaces", mustLogin(t, f.srv, "alice", adminPW), `{"name":"x","external":true,"extra":1}`)
	if r.status != 400 || r.apiErr(t).Code != client.CodeBadJSON {
		t.Fatalf("unknown field: %d %s", r.status, r.body)
	}
	if n := countRows(t, f.srv, "workspaces"); n != 2 {
		t.Fatalf("%d workspaces after bad requests, want 2", n)
	}
	if n := countRows(t, f.srv, "agents"); n != 2 {
		t.Fatalf("%d agents after bad requests, want 2", n)
	}
}

// TestWorkspaceOfAnotherUser: bob gets exactly what a missing workspace
// gets, for every endpoint.
func TestWorkspaceOfAnotherUser(t *testing.T) {
	f := newWSFixture(t)
	ctx := context.Background()
	if l, err := f.bob.ListWorkspaces(ctx); err != nil || len(l) != 0 {
		t.Fatalf("bob's list = %+v, %v", l, err)
	}
	for _, name := range []string{"dev", "nope"} {
		_, err := f.bob.Workspace(ctx, name)
		e := wantAPIError(t, err, http.StatusNotFound, client.CodeNotFound)
		if e.Message != fmt.Sprintf("you have no workspace called %q", name) {
			t.Fatalf("message %q", e.Message)
		}
		_, err = f.bob.DeleteWorkspace(ctx, name)
		wantAPIError(t, err, http.StatusNotFound, client.CodeNotFound)
		_, err = f.bob.AgentLogs(ctx, name, "main", 0)
		wantAPIError(t, err, http.StatusNotFound, client.CodeNotFound)
	}
	if _, err := f.alice.Workspace(ctx, "dev"); err != nil {
		t.Fatalf("alice's workspace after bob's attempts: %v", err)
	}
}

func TestAgentManifestAndAuthKey(t *testing.T) {
	f := newWSFixture(t, func(o *api.Options) { o.AccessURL = "https://devmesh.example.com" })
	ctx := context.Background()
	m, err := f.agent.AgentManifest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ws := f.created.Workspace
	want := client.AgentManifest{
		WorkspaceID: ws.ID, WorkspaceUUID: ws.UUID, WorkspaceName: "dev", Owner: "alice",
		AgentID: ws.Agents[0].ID, AgentUUID: m.AgentUUID, AgentName: "main", Env: map[string]string{},
		CoordinatorURL: "https://devmesh.example.com", External: true,
	}
	if fmt.Sprint(m) != fmt.Sprint(want) || m.AgentUUID == "" {
		t.Fatalf("manifest\n got %+v\nwant %+v", m, want)
	}

	k1, err := f.agent.AgentAuthKey(ctx)
	if err != nil || !strings.HasPrefix(k1.Key, "dmkey_") {
		t.Fatalf("auth key %+v, %v", k1, err)
	}
	ak, err := f.srv.Store.CheckAuthKey(ctx, secret.Hash(k1.Key))
	if err != nil {
		t.Fatal(err)
	}
	if ak.UserID != f.aliceID || ak.AgentID != ws.Agents[0].ID || ak.Reusable || ak.Ephemeral {
		t.Fatalf("stored auth key %+v", ak)
	}
	if d := time.Until(ak.ExpiresAt); d < 9*time.Minute || d > 10*time.Minute {
		t.Fatalf("auth key expires in %v, want 10m", d)
	}
	// The agent's keys are not the user's to list.
	if keys, _ := f.alice.ListAuthKeys(ctx); len(keys) != 0 {
		t.Fatalf("alice's auth keys include the agent's: %+v", keys)
	}
	// A second key revokes the first: one live key per agent.
	k2, err := f.agent.AgentAuthKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.Store.CheckAuthKey(ctx, secret.Hash(k1.Key)); !errors.Is(err, store.ErrAuthKeyRevoked) {
		t.Fatalf("first key after minting a second: %v", err)
	}
	if _, err := f.srv.Store.CheckAuthKey(ctx, secret.Hash(k2.Key)); err != nil {
		t.Fatalf("second key: %v", err)
	}
}

func TestAgentManifestURLFromRequest(t *testing.T) {
	f := newWSFixture(t)
	m, err := f.agent.AgentManifest(context.Background())
	if err != nil || m.CoordinatorURL != f.srv.URL {
		t.Fatalf("coordinator URL %q (%v), want %q", m.CoordinatorURL, err, f.srv.URL)
	}
}

func TestAgentReports(t *testing.T) {
	f := newWSFixture(t)
	ctx := context.Background()
	pk, line := hostKey(t, "devmesh agent host key")
	if err := f.agent.PostAgentInfo(ctx, client.AgentInfo{Version: "v1.2.3", OS: "linux", Arch: "amd64", SSHHostKey: line}); err != nil {
		t.Fatal(err)
	}
	if err := f.agent.PostAgentLifecycle(ctx, client.LifecycleReady); err != nil {
		t.Fatal(err)
	}
	if err := f.agent.PostAgentStats(ctx, client.AgentStats{Connections: 2, RxBytes: 100, TxBytes: 200}); err != nil {
		t.Fatal(err)
	}
	ws, err := f.alice.Workspace(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	ag := ws.Agents[0]
	if ag.Version != "v1.2.3" || ag.OS != "linux" || ag.Arch != "amd64" || ag.Lifecycle != client.LifecycleReady ||
		ag.Connections != 2 || ag.RxBytes != 100 || ag.TxBytes != 200 || time.Since(ag.LastSeen) > time.Minute {
		t.Fatalf("agent after reports %+v", ag)
	}
	// Seen, but without an online node: disconnected, not connecting.
	if ag.Status != client.AgentDisconnected {
		t.Fatalf("status %q", ag.Status)
	}
	got, _, _, _, err := gossh.ParseAuthorizedKey([]byte(ag.SSHHostKey))
	if err != nil || string(got.Marshal()) != string(pk.Marshal()) || strings.Contains(ag.SSHHostKey, "devmesh agent host key") {
		t.Fatalf("published host key %q (%v)", ag.SSHHostKey, err)
	}
}

func TestAgentReportsBadInput(t *testing.T) {
	f := newWSFixture(t)
	ctx := context.Background()
	_, good := hostKey(t, "")
	_, other := hostKey(t, "")
	for name, info := range map[string]client.AgentInfo{
		"garbage key":   {OS: "linux", Arch: "amd64", SSHHostKey: "not a key"},
		"truncated key": {OS: "linux", Arch: "amd64", SSHHostKey: good[:len(good)-10]},
		"empty key":     {OS: "linux", Arch: "amd64"},
		"two keys":      {OS: "linux", Arch: "amd64", SSHHostKey: good + "\n" + other},
		"key options":   {OS: "linux", Arch: "amd64", SSHHostKey: `command="x" ` + good},
		"bad os":        {OS: "Linux; rm", Arch: "amd64", SSHHostKey: good},
		"bad version":   {Version: "v1\x00", OS: "linux", Arch: "amd64", SSHHostKey: good},
	} {
		err := f.agent.PostAgentInfo(ctx, info)
		if e, ok := err.(*client.Error); !ok || e.Status != 400 || e.Code != client.CodeBadRequest {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	wantAPIError(t, f.agent.PostAgentLifecycle(ctx, "bogus"), http.StatusBadRequest, client.CodeBadRequest)
	wantAPIError(t, f.agent.PostAgentLifecycle(ctx, client.LifecycleCreated), http.StatusBadRequest, client.CodeBadRequest)
	wantAPIError(t, f.agent.PostAgentStats(ctx, client.AgentStats{RxBytes: -1}), http.StatusBadRequest, client.CodeBadRequest)
	ws, _ := f.alice.Workspace(ctx, "dev")
	if ag := ws.Agents[0]; ag.SSHHostKey != "" || ag.OS != "" || ag.Lifecycle != client.LifecycleCreated || ag.Status != client.AgentConnecting {
		t.Fatalf("agent changed by bad reports: %+v", ag)
	}
}

func TestAgentLogs(t *testing.T) {
	f := newWSFixture(t)
	ctx := context.Background()
	lines := []client.AgentLogLine{
		{Output: "one"},
		{Stream: client.StreamStderr, Output: "two"},
		{Stream: client.StreamStdout, Output: "three", CreatedAt: time.Now().Add(time.Hour)},
	}
	if err := f.agent.PostAgentLogs(ctx, lines); err != nil {
		t.Fatal(err)
	}
	logs, err := f.alice.AgentLogs(ctx, "dev", "main", 0)
	if err != nil || len(logs) != 3 {
		t.Fatalf("logs %+v, %v", logs, err)
	}
	if logs[0].Output != "one" || logs[0].Stream != "stdout" || logs[1].Stream != "stderr" || logs[2].CreatedAt.After(time.Now()) {
		t.Fatalf("logs %+v", logs)
	}
	rest, err := f.alice.AgentLogs(ctx, "dev", "main", logs[0].ID)
	if err != nil || len(rest) != 2 || rest[0].Output != "two" {
		t.Fatalf("logs after %d: %+v, %v", logs[0].ID, rest, err)
	}
	_, err = f.alice.AgentLogs(ctx, "dev", "nope", 0)
	wantAPIError(t, err, http.StatusNotFound, client.CodeNotFound)
	r := call(t, f.srv, "GET", "/api/v1/workspaces/dev/agents/main/logs?after=-1", mustLogin(t, f.srv, "alice", adminPW), "")
	if r.status != 400 {
		t.Fatalf("after=-1: %d %s", r.status, r.body)
	}

	// Oversized: a body over 64 KiB, too many lines, a too long line.
	big := make([]client.AgentLogLine, 20)
	for i := range big {
		big[i].Output = strings.Repeat("x", 4000)
	}
	wantAPIError(t, f.agent.PostAgentLogs(ctx, big), http.StatusRequestEntityTooLarge, client.CodeBodyTooLarge)
	many := make([]client.AgentLogLine, client.MaxAgentLogLines+1)
	wantAPIError(t, f.agent.PostAgentLogs(ctx, many), http.StatusRequestEntityTooLarge, client.CodeBodyTooLarge)
	long := []client.AgentLogLine{{Output: strings.Repeat("y", client.MaxAgentLogLineBytes+1)}}
	wantAPIError(t, f.agent.PostAgentLogs(ctx, long), http.StatusRequestEntityTooLarge, client.CodeBodyTooLarge)
	wantAPIError(t, f.agent.PostAgentLogs(ctx, []client.AgentLogLine{{Stream: "stdin", Output: "x"}}), http.StatusBadRequest, client.CodeBadRequest)
	if n := countRows(t, f.srv, "agent_logs"); n != 3 {
		t.Fatalf("%d log rows after refused posts, want 3", n)
	}
}

func TestAgentLogsFull(t *testing.T) {
	f := newWSFixture(t)
	ctx := context.Background()
	ag, err := f.srv.Store.AgentByTokenHash(ctx, secret.Hash(f.created.AgentToken))
	if err != nil {
		t.Fatal(err)
	}
	fill := make([]store.AgentLog, client.MaxAgentLogsStored-1)
	for i := range fill {
		fill[i].Output = "x"
	}
	if err := f.srv.Store.AppendAgentLogs(ctx, ag.ID, fill); err != nil {
		t.Fatal(err)
	}
	if err := f.agent.PostAgentLogs(ctx, []client.AgentLogLine{{Output: "last"}}); err != nil {
		t.Fatalf("the last line that fits: %v", err)
	}
	wantAPIError(t, f.agent.PostAgentLogs(ctx, []client.AgentLogLine{{Output: "one too many"}}), http.StatusRequestEntityTooLarge, client.CodeLogsFull)
}

// TestAgentAndUserTokensDoNotMix: each API takes only its own kind of
// token, and says so.
func TestAgentAndUserTokensDoNotMix(t *testing.T) {
	f := newWSFixture(t)
	ctx := context.Background()
	session := mustLogin(t, f.srv, "alice", adminPW)
	apiTok, err := f.srv.Client(t, session).CreateToken(ctx, client.CreateTokenRequest{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{session, apiTok.Secret} {
		_, err := f.srv.Client(t, tok).AgentManifest(ctx)
		e := wantAPIError(t, err, http.StatusUnauthorized, client.CodeUnauthorized)
		if !strings.Contains(e.Message, "user's token") {
			t.Fatalf("user token on the agent API: %q", e.Message)
		}
	}
	for _, tok := range []string{"", "dma_unknown", f.created.AgentToken + "x"} {
		_, err := f.srv.Client(t, tok).AgentAuthKey(ctx)
		wantAPIError(t, err, http.StatusUnauthorized, client.CodeUnauthorized)
	}
	_, err = f.agent.ListWorkspaces(ctx)
	wantAPIError(t, err, http.StatusUnauthorized, client.CodeUnauthorized)
	_, err = f.agent.Me(ctx)
	wantAPIError(t, err, http.StatusUnauthorized, client.CodeUnauthorized)
	_, err = f.agent.CreateAuthKey(ctx, client.CreateAuthKeyRequest{})
	wantAPIError(t, err, http.StatusUnauthorized, client.CodeUnauthorized)
}

// addAgentNode registers a node for an agent as the control plane would.
func addAgentNode(t *testing.T, srv *apitest.Server, owner, agentID int64, online bool, ip4, ip6 string) *control.Node {
	t.Helper()
	mk, nk := key.NewMachine().Public(), key.NewNode().Public()
	sn, _, err := srv.Store.CreateNode(context.Background(), store.Node{
		UserID: owner, AgentID: agentID, MachineKey: mk.String(), NodeKey: nk.String(), Hostname: "dev-main", GivenName: "dev-main",
	}, "", func() (string, string) { return ip4, ip6 })
	if err != nil {
		t.Fatal(err)
	}
	n := &control.Node{
		ID: tailcfg.NodeID(sn.ID), StableID: tailcfg.StableNodeID(sn.StableID), Owner: owner, AgentID: agentID,
		MachineKey: mk, NodeKey: nk, Hostname: "dev-main", GivenName: "dev-main", Online: online,
		Addresses: []netip.Prefix{netip.MustParsePrefix(ip4 + "/32"), netip.MustParsePrefix(ip6 + "/128")},
		Created:   sn.CreatedAt,
	}
	srv.Control.Registry().Upsert(n)
	return n
}

func TestDeleteExternalWorkspace(t *testing.T) {
	f := newWSFixture(t)
	ctx := context.Background()
	agentID := f.created.Workspace.Agents[0].ID
	n := addAgentNode(t, f.srv, f.aliceID, agentID, true, "100.64.0.9", "fd7a:115c:a1e0::9")
	ws, err := f.alice.Workspace(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if ag := ws.Agents[0]; ag.Status != client.AgentConnected || len(ag.Addresses) != 2 || ag.Addresses[0] != "100.64.0.9" {
		t.Fatalf("agent with an online node: %+v", ag)
	}
	key, err := f.agent.AgentAuthKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.agent.PostAgentLogs(ctx, []client.AgentLogLine{{Output: "x"}}); err != nil {
		t.Fatal(err)
	}

	if b, err := f.alice.DeleteWorkspace(ctx, "dev"); err != nil || b != nil {
		t.Fatalf("delete an external workspace: build %v, %v", b, err)
	}
	_, err = f.alice.Workspace(ctx, "dev")
	wantAPIError(t, err, http.StatusNotFound, client.CodeNotFound)
	if f.srv.Control.Registry().Node(n.ID) != nil {
		t.Fatal("the agent's node is still in the tailnet")
	}
	if _, err := f.srv.Store.NodeByID(ctx, int64(n.ID)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the agent's node is still stored: %v", err)
	}
	if _, err := f.srv.Store.CheckAuthKey(ctx, secret.Hash(key.Key)); !errors.Is(err, store.ErrAuthKeyRevoked) {
		t.Fatalf("the agent's unused auth key after delete: %v", err)
	}
	_, err = f.agent.AgentManifest(ctx)
	e := wantAPIError(t, err, http.StatusUnauthorized, client.CodeUnauthorized)
	if !strings.Contains(e.Message, "revoked agent token") {
		t.Fatalf("revoked token message %q", e.Message)
	}
	for _, table := range []string{"workspaces", "agents", "agent_logs"} {
		if c := countRows(t, f.srv, table); c != 0 {
			t.Fatalf("%d rows left in %s", c, table)
		}
	}
	_, err = f.alice.DeleteWorkspace(ctx, "dev")
	wantAPIError(t, err, http.StatusNotFound, client.CodeNotFound)
}

func mustLogin(t *testing.T, srv *apitest.Server, user, pw string) string {
	t.Helper()
	s, err := srv.Client(t, "").Login(context.Background(), client.LoginRequest{Username: user, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	return s.Token
}
