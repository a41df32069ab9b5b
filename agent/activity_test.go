package agent_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/coordtest"
)

// TestConnectionCountFollowsSessions: the agent reports its open
// connections as they change, not only every StatsInterval (15s): `show`
// counts an SSH connection and a forwarded port at once, and drops to 0
// when both closed; the workspace's activity (which pushes autostop back)
// is recorded.
func TestConnectionCountFollowsSessions(t *testing.T) {
	coord := coordtest.Start(t)
	ctx := t.Context()
	ag := startBobsAgent(t, coord)
	addr := ag.Addresses[0]
	hostKey, _, _, _, err := gossh.ParseAuthorizedKey([]byte(ag.SSHHostKey))
	if err != nil {
		t.Fatal(err)
	}
	anon, _ := client.New(coord.URL(), "")
	sess, err := anon.Login(ctx, client.LoginRequest{Username: "bob", Password: "bob-password-1"})
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := client.New(coord.URL(), sess.Token)
	bobUser, _ := coord.Store().UserByName(ctx, "bob")
	dev := startNode(t, coord.URL(), coord.AuthKey(t, bobUser, false, true), "bob-laptop")

	// Well under the agent's 15s StatsInterval.
	waitConnections := func(want int64) {
		t.Helper()
		var got int64
		for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			ws, err := bob.Workspace(ctx, "dev")
			if err != nil {
				t.Fatal(err)
			}
			if got = ws.Agents[0].Connections; got == want {
				return
			}
		}
		t.Fatalf("show says %d open connections, want %d", got, want)
	}
	waitConnections(0)

	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	nc, err := dev.Dial(dctx, "tcp", net.JoinHostPort(addr, "22"))
	if err != nil {
		t.Fatal(err)
	}
	sc, chans, reqs, err := gossh.NewClientConn(nc, addr, &gossh.ClientConfig{User: "bob", HostKeyCallback: gossh.FixedHostKey(hostKey)})
	if err != nil {
		t.Fatal(err)
	}
	sshc := gossh.NewClient(sc, chans, reqs)
	defer sshc.Close()
	session, err := sshc.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	waitConnections(1)

	port := serveLoopbackTCP(t)
	fc, err := dev.Dial(dctx, "tcp", net.JoinHostPort(addr, fmt.Sprint(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	fmt.Fprintln(fc, "ping")
	if _, err := bufio.NewReader(fc).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	waitConnections(2)

	session.Close()
	sshc.Close()
	fc.Close()
	waitConnections(0)

	ws, err := coord.Store().WorkspaceByName(ctx, bobUser.ID, "dev")
	if err != nil {
		t.Fatal(err)
	}
	sched, err := coord.Store().WorkspaceSchedule(ctx, ws.ID)
	if err != nil || time.Since(sched.LastActivityAt) > time.Minute {
		t.Fatalf("workspace activity %v (%v), want just now", sched.LastActivityAt, err)
	}
}
