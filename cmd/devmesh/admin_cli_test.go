package main

import (
	"strings"
	"testing"

	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/internal/cliconfig"
)

// TestCLIAdminAddressing: one OWNER/WS syntax in every command; list
// --all shows owners; members get a clear refusal; ssh to another user's
// workspace is refused while the server does not run with
// --admins-reach-all.
func TestCLIAdminAddressing(t *testing.T) {
	cliEnv(t)
	srv := apitest.New(t)
	t.Setenv(cliconfig.EnvURL, srv.URL)
	admin := srv.Bootstrap(t, "alice", cliAdminPW)
	bob := srv.CreateUser(t, admin, "bob", cliAdminPW+"b", client.RoleMember)

	t.Setenv(cliconfig.EnvToken, bob)
	mustRun(t, "", "create", "box", "--external")
	for _, args := range [][]string{{"list", "--all"}, {"show", "alice/dev"}, {"logs", "alice/dev"}, {"delete", "alice/dev"}} {
		_, _, err := runCLI(t, "", args...)
		if err == nil || !(strings.Contains(err.Error(), "needs the admin role") || strings.Contains(err.Error(), "only admins address other users' workspaces")) {
			t.Errorf("bob: devmesh %s: %v", strings.Join(args, " "), err)
		}
	}

	t.Setenv(cliconfig.EnvToken, admin)
	mustRun(t, "", "create", "dev", "--external")
	stdout, _ := mustRun(t, "", "list", "--all")
	if !regexpLine(stdout, `^OWNER\s+WORKSPACE\s+TEMPLATE`) || !regexpLine(stdout, `^alice\s+dev\s+\(external\)`) || !regexpLine(stdout, `^bob\s+box\s+\(external\)`) {
		t.Errorf("list --all:\n%s", stdout)
	}
	if stdout, _ = mustRun(t, "", "list"); strings.Contains(stdout, "box") {
		t.Errorf("list without --all shows bob's workspace:\n%s", stdout)
	}
	if stdout, _ = mustRun(t, "", "show", "bob/box"); !regexpLine(stdout, `^Owner:\s+bob$`) {
		t.Errorf("show bob/box:\n%s", stdout)
	}
	if _, stderr, err := runCLI(t, "", "ssh", "bob/box", "--", "true"); err == nil || !strings.Contains(stderr, "--admins-reach-all") {
		t.Errorf("ssh bob/box: %v\n%s", err, stderr)
	}
	if _, stderr, err := runCLI(t, "", "ssh", "bob/nope"); err == nil || !strings.Contains(stderr, `bob has no workspace called \"nope\"`) && !strings.Contains(stderr, "not found") {
		t.Errorf("ssh bob/nope: %v\n%s", err, stderr)
	}
	stdout, _ = mustRun(t, "", "delete", "bob/box")
	if !strings.Contains(stdout, "Deleted workspace bob/box.") {
		t.Errorf("delete bob/box: %q", stdout)
	}
	if stdout, _ = mustRun(t, "", "list", "--all"); strings.Contains(stdout, "box") || !strings.Contains(stdout, "dev") {
		t.Errorf("list --all after deleting bob/box:\n%s", stdout)
	}
}
