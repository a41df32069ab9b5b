package main

import (
	"strings"
	"testing"

	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/internal/cliconfig"
)

// TestCLIHelpTexts: flag help does not render words in backquotes as a
// flag argument, and logs --help does not claim a default build.
func TestCLIHelpTexts(t *testing.T) {
	cliEnv(t)
	stdout, _ := mustRun(t, "", "create", "--help")
	if !regexpLine(stdout, `^\s+--external\s+bring your own machine`) {
		t.Errorf("create --help:\n%s", stdout)
	}
	stdout, _ = mustRun(t, "", "logs", "--help")
	if strings.Contains(stdout, "(default latest)") || !strings.Contains(stdout, "Without --build: the agent's log") {
		t.Errorf("logs --help:\n%s", stdout)
	}
}

// TestCLILogsEmpty: an agent that logged nothing gets a word on stderr
// instead of silence.
func TestCLILogsEmpty(t *testing.T) {
	cliEnv(t)
	srv := apitest.New(t)
	t.Setenv(cliconfig.EnvURL, srv.URL)
	t.Setenv(cliconfig.EnvToken, srv.Bootstrap(t, "alice", cliAdminPW))
	mustRun(t, "", "create", "dev", "--external")
	stdout, stderr := mustRun(t, "", "logs", "dev")
	if stdout != "" || !strings.Contains(stderr, "Agent main has logged nothing: its template sets no startup_script") {
		t.Errorf("logs of a silent agent: %q / %q", stdout, stderr)
	}
}
