package builds_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/schedule"
)

// laterClock is the wall clock moved forward by d.
type laterClock struct{ d time.Duration }

func (c laterClock) Now() time.Time                         { return time.Now().Add(c.d) }
func (c laterClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func ms(d time.Duration) *int64 { n := d.Milliseconds(); return &n }

// TestScheduleAPI: schedules set at create (the template's default TTL
// when none is given) and with PUT; bad specs, time zones and TTLs over
// the template's maximum are refused and change nothing; a member cannot
// schedule another's workspace or change a template's policy; a stop
// the TTL calls for is a build initiated by the schedule.
func TestScheduleAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := apiServer(t, 0)
	tok := srv.Bootstrap(t, "root", adminPW)
	admin := srv.Client(t, tok)
	bob := srv.Client(t, srv.CreateUser(t, tok, "bob", memberPW, client.RoleMember))
	if _, err := admin.PushTemplate(ctx, "base", packDir(t, map[string]string{"main.tf": fastTemplate}), ""); err != nil {
		t.Fatal(err)
	}
	wantCode(t, mustErr(bob.SetTemplateSchedule(ctx, "base", client.TemplateSchedule{MaxTTLMs: 1})), http.StatusForbidden, client.CodeForbidden)
	wantCode(t, mustErr(admin.SetTemplateSchedule(ctx, "base", client.TemplateSchedule{DefaultTTLMs: *ms(13 * time.Hour), MaxTTLMs: *ms(12 * time.Hour)})),
		http.StatusBadRequest, client.CodeBadSchedule)
	policy := client.TemplateSchedule{DefaultTTLMs: *ms(8 * time.Hour), MaxTTLMs: *ms(12 * time.Hour)}
	if got, err := admin.SetTemplateSchedule(ctx, "base", policy); err != nil || got != policy {
		t.Fatalf("template schedule: %+v, %v", got, err)
	}

	// Refused at create: nothing is created.
	for _, req := range []client.CreateWorkspaceRequest{
		{Name: "dev", Template: "base", Autostart: "CRON_TZ=Nowhere/Atlantis 30 8 * * 1-5"},
		{Name: "dev", Template: "base", Autostart: "30 8 * *"},
		{Name: "dev", Template: "base", TTLMs: ms(13 * time.Hour)},
	} {
		wantCode(t, mustErr(bob.CreateWorkspace(ctx, req)), http.StatusBadRequest, client.CodeBadSchedule)
	}
	if n := countRows(t, srv, "workspaces"); n != 0 {
		t.Fatalf("refused creates left %d workspaces", n)
	}

	const spec = "CRON_TZ=Europe/Berlin 30 8 * * 1-5"
	if _, err := bob.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", Template: "base", Autostart: spec}); err != nil {
		t.Fatal(err)
	}
	done, err := bob.FollowBuild(ctx, "dev", 1, 0, func(client.BuildLog) {})
	if err != nil || done.Status != client.BuildSucceeded {
		t.Fatalf("first build: %+v, %v", done, err)
	}
	ws, err := bob.Workspace(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	sc := ws.Schedule
	if sc == nil || sc.Autostart != spec || sc.TTLMs != *ms(8 * time.Hour) || sc.NextAutostart.IsZero() ||
		sc.AutostopAt.Sub(done.FinishedAt).Round(time.Second) != 8*time.Hour {
		t.Fatalf("schedule after create: %+v (build finished %v)", sc, done.FinishedAt)
	}

	// Bad changes are refused whole.
	bad := "CRON_TZ=Mars/Olympus 0 9 * * *"
	for _, req := range []client.UpdateScheduleRequest{
		{Autostart: &bad, TTLMs: ms(time.Hour)},
		{TTLMs: ms(13 * time.Hour)},
		{TTLMs: ms(-time.Hour)},
	} {
		wantCode(t, mustErr(bob.UpdateWorkspaceSchedule(ctx, "dev", req)), http.StatusBadRequest, client.CodeBadSchedule)
	}
	if got, err := bob.WorkspaceSchedule(ctx, "dev"); err != nil || got.Autostart != spec || got.TTLMs != *ms(8 * time.Hour) {
		t.Fatalf("a refused change changed the schedule: %+v, %v", got, err)
	}

	// Members cannot schedule others' workspaces; admins can.
	if _, err := admin.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "adm", Template: "base"}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, mustErr(bob.UpdateWorkspaceSchedule(ctx, "root/adm", client.UpdateScheduleRequest{TTLMs: ms(time.Hour)})),
		http.StatusForbidden, client.CodeForbidden)
	wantCode(t, mustErr(bob.UpdateWorkspaceSchedule(ctx, "adm", client.UpdateScheduleRequest{TTLMs: ms(time.Hour)})),
		http.StatusNotFound, client.CodeNotFound)
	off := ""
	got, err := admin.UpdateWorkspaceSchedule(ctx, "bob/dev", client.UpdateScheduleRequest{Autostart: &off, TTLMs: ms(time.Hour)})
	if err != nil || got.Autostart != "" || got.TTLMs != *ms(time.Hour) || !got.NextAutostart.IsZero() {
		t.Fatalf("admin sets bob/dev: %+v, %v", got, err)
	}
	if _, err := bob.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "ext", External: true}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, mustErr(bob.WorkspaceSchedule(ctx, "ext")), http.StatusBadRequest, client.CodeBadSchedule)

	// Two hours later the TTL has passed: the scheduler queues a stop,
	// which shows as initiated by the schedule.
	sch, err := schedule.New(schedule.Options{Store: srv.Store, Clock: laterClock{2 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	stop, err := bob.FollowBuild(ctx, "dev", 2, 0, func(client.BuildLog) {})
	if err != nil || stop.Status != client.BuildSucceeded || stop.Transition != client.TransitionStop ||
		stop.InitiatedBy != client.InitiatedByAutostop || stop.Initiator != "" {
		t.Fatalf("scheduled stop: %+v, %v", stop, err)
	}
	list, err := bob.ListBuilds(ctx, "dev")
	if err != nil || len(list) != 2 || list[1].InitiatedBy != client.InitiatedByAutostop {
		t.Fatalf("builds: %+v, %v", list, err)
	}
	if err := sch.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if list, _ := bob.ListBuilds(ctx, "dev"); len(list) != 2 {
		t.Fatalf("a stopped workspace was stopped again: %+v", list)
	}
}
