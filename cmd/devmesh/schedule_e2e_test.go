package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/coordinator/schedule"
	"github.com/devmesh/devmesh/provision"
)

// laterClock is the wall clock moved forward by d.
type laterClock struct{ d time.Duration }

func (c laterClock) Now() time.Time                         { return time.Now().Add(c.d) }
func (c laterClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// TestScheduleAndSSHStart runs the local template through the CLI: a
// template's schedule policy, a workspace created with an autostart,
// `schedule` showing and refusing bad changes (nothing changed), the
// scheduler stopping it when the TTL passed (shown as initiated by the
// schedule in `builds`), then `devmesh ssh` to the stopped workspace:
// refused without a terminal with a message naming --start, and with
// --start started, waited for and connected.
func TestScheduleAndSSHStart(t *testing.T) {
	if _, err := provision.CheckTerraform(context.Background(), ""); err != nil {
		t.Skipf("needs terraform: %v", err)
	}
	cliEnv(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	coord := coordtest.Start(t, coordtest.WithDevmeshBinary(self))
	ctx := context.Background()
	root := t.TempDir()
	mustRun(t, cliAdminPW+"\n", "login", coord.URL(), "--username", "alice", "--password-stdin")
	mustRun(t, "", "templates", "push", "local", "-d", filepath.Join("..", "..", "examples", "templates", "local"))

	stdout, _ := mustRun(t, "", "templates", "edit", "local", "--default-ttl", "8h", "--max-ttl", "12h")
	if !strings.Contains(stdout, "Default TTL: 8h") || !strings.Contains(stdout, "Maximum TTL: 12h") {
		t.Errorf("templates edit:\n%s", stdout)
	}
	if _, _, err := runCLI(t, "", "templates", "edit", "local", "--default-ttl", "13h"); client.ErrorCode(err) != client.CodeBadSchedule {
		t.Errorf("a default over the maximum: %v", err)
	}

	const spec = "CRON_TZ=Europe/Berlin 30 8 * * 1-5"
	_, _, err = runCLI(t, "", "create", "dev", "--template", "local", "--var", "workspaces_dir="+root, "--autostart", spec)
	t.Cleanup(func() {
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			killLocalAgent(filepath.Join(root, e.Name()))
		}
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	stdout, _ = mustRun(t, "", "schedule", "dev")
	for _, want := range []string{"Autostart: " + spec + " (next: ", "Autostop:  8h after start or last use", "Stops at:"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("schedule lacks %q:\n%s", want, stdout)
		}
	}
	if _, _, err := runCLI(t, "", "schedule", "dev", "--autostart", "CRON_TZ=Nowhere/Atlantis 30 8 * * *", "--ttl", "1h"); client.ErrorCode(err) != client.CodeBadSchedule ||
		!strings.Contains(err.Error(), "Nowhere/Atlantis") {
		t.Errorf("a bad time zone: %v", err)
	}
	if _, _, err := runCLI(t, "", "schedule", "dev", "--ttl", "13h"); client.ErrorCode(err) != client.CodeBadSchedule {
		t.Errorf("a TTL over the template's maximum: %v", err)
	}
	stdout, _ = mustRun(t, "", "schedule", "show", "dev", "-o", "json")
	var sc client.WorkspaceSchedule
	if err := json.Unmarshal([]byte(stdout), &sc); err != nil || sc.Autostart != spec || sc.TTLMs != (8*time.Hour).Milliseconds() {
		t.Fatalf("refused changes changed the schedule: %v\n%s", err, stdout)
	}
	mustRun(t, "", "schedule", "dev", "--ttl", "1h")
	if out, _ := mustRun(t, "", "show", "dev"); !strings.Contains(out, "Autostop:") || !strings.Contains(out, "1h after start") {
		t.Errorf("show lacks the schedule:\n%s", out)
	}

	// Two hours on, the scheduler stops the unused workspace.
	sch, err := schedule.New(schedule.Options{Store: coord.Store(), Clock: laterClock{2 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "", "builds", "dev", "--follow", "2")
	stdout, _ = mustRun(t, "", "builds", "dev")
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != 3 || !strings.Contains(lines[2], "schedule (autostop)") ||
		!strings.Contains(lines[2], "succeeded") {
		t.Fatalf("builds after the scheduled stop:\n%s", stdout)
	}

	// ssh to the stopped workspace: no terminal, no --start.
	_, stderr, err := runCLI(t, "", "ssh", "dev", "--", "echo", "ok")
	if err == nil || !strings.Contains(stderr, "workspace dev is stopped") || !strings.Contains(stderr, "devmesh ssh --start dev") {
		t.Fatalf("ssh to a stopped workspace: %v\n%s", err, stderr)
	}
	if b, _ := mustRun(t, "", "builds", "dev"); strings.Count(b, "\n") != 3 {
		t.Fatalf("the refused ssh queued a build:\n%s", b)
	}
	start := time.Now()
	stdout, stderr, err = runCLI(t, "", "ssh", "--start", "dev", "--", "echo", "ok")
	if err != nil || stdout != "ok\n" || !strings.Contains(stderr, "Queued build #3 (start) of dev") {
		t.Fatalf("ssh --start: %v, stdout %q\nstderr:\n%s", err, stdout, stderr)
	}
	t.Logf("measured: ssh --start to a stopped local workspace, start build to command output: %v", time.Since(start).Round(time.Millisecond))

	// An autostart slot passes while the coordinator is down: the
	// restarted coordinator's scheduler starts the workspace, once.
	mustRun(t, "", "stop", "dev")
	alice := mustUser(t, coord.Store(), "alice")
	w, err := coord.Store().WorkspaceByName(ctx, alice.ID, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if err := coord.Store().SetWorkspaceSchedule(ctx, w.ID, "* * * * *", time.Hour, time.Now().Add(-3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	coord.Restart(t)
	var list []client.Build
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		stdout, _ = mustRun(t, "", "builds", "dev", "-o", "json")
		if err := json.Unmarshal([]byte(stdout), &list); err != nil {
			t.Fatal(err)
		}
		if len(list) == 5 || time.Now().After(deadline) {
			break
		}
	}
	if len(list) != 5 || list[4].Transition != client.TransitionStart || list[4].InitiatedBy != client.InitiatedByAutostart {
		t.Fatalf("after the restart: want build #5, a start by autostart; got %+v", list)
	}
	mustRun(t, "", "builds", "dev", "--follow", "5")
}
