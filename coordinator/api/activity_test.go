package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
)

// TestAgentActivity: a stats report with an open connection records the
// workspace's activity (which pushes its autostop back), so does the
// report of the last connection closing; idle reports do not. The count
// shown drops to 0 with that report, and when the agent turns off.
func TestAgentActivity(t *testing.T) {
	f := newWSFixture(t)
	ctx := context.Background()
	activity := func() time.Time {
		t.Helper()
		ws, err := f.srv.Store.WorkspaceByName(ctx, f.aliceID, "dev")
		if err != nil {
			t.Fatal(err)
		}
		sc, err := f.srv.Store.WorkspaceSchedule(ctx, ws.ID)
		if err != nil {
			t.Fatal(err)
		}
		return sc.LastActivityAt
	}
	connections := func() int64 {
		t.Helper()
		ws, err := f.alice.Workspace(ctx, "dev")
		if err != nil {
			t.Fatal(err)
		}
		return ws.Agents[0].Connections
	}
	report := func(st client.AgentStats) {
		t.Helper()
		if err := f.agent.PostAgentStats(ctx, st); err != nil {
			t.Fatal(err)
		}
	}

	report(client.AgentStats{})
	if !activity().IsZero() {
		t.Fatal("an idle report recorded activity")
	}
	report(client.AgentStats{Connections: 1, Sessions: 1, PortForwards: 2})
	first := activity()
	if first.IsZero() || connections() != 3 {
		t.Fatalf("after a report with connections: activity %v, connections %d", first, connections())
	}
	time.Sleep(5 * time.Millisecond)
	report(client.AgentStats{})
	closed := activity()
	if !closed.After(first) || connections() != 0 {
		t.Fatalf("the last connection closing: activity %v (was %v), connections %d", closed, first, connections())
	}
	time.Sleep(5 * time.Millisecond)
	report(client.AgentStats{})
	if !activity().Equal(closed) {
		t.Fatal("an idle report moved the activity")
	}

	report(client.AgentStats{Connections: 2})
	if err := f.agent.PostAgentLifecycle(ctx, client.LifecycleOff); err != nil {
		t.Fatal(err)
	}
	if n := connections(); n != 0 {
		t.Fatalf("an agent that is off shows %d connections", n)
	}
}
