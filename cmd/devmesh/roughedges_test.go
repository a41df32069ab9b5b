package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/client"
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
	if stdout != "" || !strings.Contains(stderr, "Agent main has no log: the agent of an external workspace runs no startup script") {
		t.Errorf("logs of a silent agent: %q / %q", stdout, stderr)
	}
}

// TestCLIJSONOutput: version and create take -o json, and a failing
// command run with -o json reports its error as JSON (with the API's code).
func TestCLIJSONOutput(t *testing.T) {
	cliEnv(t)
	stdout, _ := mustRun(t, "", "version", "-o", "json")
	var v struct{ Version string }
	if err := json.Unmarshal([]byte(stdout), &v); err != nil || v.Version == "" {
		t.Errorf("version -o json: %v\n%s", err, stdout)
	}
	srv := apitest.New(t)
	t.Setenv(cliconfig.EnvURL, srv.URL)
	t.Setenv(cliconfig.EnvToken, srv.Bootstrap(t, "alice", cliAdminPW))
	stdout, _ = mustRun(t, "", "create", "dev", "--external", "-o", "json")
	var created client.CreatedWorkspace
	if err := json.Unmarshal([]byte(stdout), &created); err != nil || created.Workspace.Name != "dev" || created.AgentToken == "" {
		t.Errorf("create -o json: %v\n%s", err, stdout)
	}

	root := newRootCmd()
	root.SetArgs([]string{"show", "nope", "-o", "json"})
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	cmd, err := root.ExecuteC()
	if err == nil {
		t.Fatal("show nope succeeded")
	}
	var buf bytes.Buffer
	reportError(&buf, cmd, err)
	var e struct{ Error, Code string }
	if jerr := json.Unmarshal(buf.Bytes(), &e); jerr != nil || e.Code != client.CodeNotFound || !strings.Contains(e.Error, `"nope"`) {
		t.Errorf("error with -o json: %v\n%s", jerr, buf.String())
	}
	buf.Reset()
	reportError(&buf, root, err)
	if !strings.HasPrefix(buf.String(), "error: ") {
		t.Errorf("error without -o json: %q", buf.String())
	}
}

// TestNodeLastSeen: an online node is seen "now", not "never".
func TestNodeLastSeen(t *testing.T) {
	if got := nodeLastSeen(client.Node{Online: true}); got != "now" {
		t.Errorf("online node: %q", got)
	}
	if got := nodeLastSeen(client.Node{}); got != "never" {
		t.Errorf("never seen: %q", got)
	}
}

// TestCLICompletion: shell completion offers workspace and template
// names, not local files.
func TestCLICompletion(t *testing.T) {
	cliEnv(t)
	srv := apitest.New(t)
	t.Setenv(cliconfig.EnvURL, srv.URL)
	t.Setenv(cliconfig.EnvToken, srv.Bootstrap(t, "alice", cliAdminPW))
	mustRun(t, "", "create", "dev", "--external")
	mustRun(t, "", "create", "box", "--external")
	stdout, _ := mustRun(t, "", "__complete", "ssh", "d")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 || lines[0] != "dev" || lines[1] != ":4" { // 4: no file completion
		t.Errorf("complete ssh d: %q", stdout)
	}
	if stdout, _ = mustRun(t, "", "__complete", "show", ""); !strings.Contains(stdout, "box\n") || !strings.Contains(stdout, "dev\n") {
		t.Errorf("complete show: %q", stdout)
	}
	if stdout, _ = mustRun(t, "", "__complete", "create", "x", "--template", ""); !strings.HasSuffix(strings.TrimSpace(stdout), ":4") {
		t.Errorf("complete --template: %q", stdout)
	}
}

// TestCLINoAgentMessages: a workspace started from a template without an
// agent and a stopped one get different messages from ssh (and logs),
// each saying what to do; logs of an agent without a startup script says
// it has none.
func TestCLINoAgentMessages(t *testing.T) {
	cliEnv(t)
	srv := provisioningServer(t)
	mustRun(t, cliAdminPW+"\n", "login", srv.URL, "--username", "root", "--password-stdin")
	mustRun(t, "", "templates", "push", "noagent", "-d", writeTemplate(t, cliTemplateHeader+"\nresource \"terraform_data\" \"x\" {}\n"))
	mustRun(t, "", "create", "dev", "--template", "noagent")
	_, stderr, err := runCLI(t, "", "ssh", "dev", "--", "true")
	if err == nil || !strings.Contains(stderr, "workspace dev is started, but its template (noagent) declares no agent") {
		t.Errorf("ssh to a started workspace without agents: %v, %s", err, stderr)
	}
	_, _, err = runCLI(t, "", "logs", "dev")
	if err == nil || !strings.Contains(err.Error(), "declares no agent") || !strings.Contains(err.Error(), "devmesh logs dev --build 1") {
		t.Errorf("logs of a started workspace without agents: %v", err)
	}
	mustRun(t, "", "stop", "dev")
	_, stderr, err = runCLI(t, "", "ssh", "dev", "--", "true")
	if err == nil || !strings.Contains(stderr, "workspace dev is stopped: start it with `devmesh start dev`, or connect with `devmesh ssh --start dev`") {
		t.Errorf("ssh to a stopped workspace: %v, %s", err, stderr)
	}

	// An agent without a startup script has no log, and logs says so.
	mustRun(t, "", "templates", "push", "agent", "-d", writeTemplate(t, cliTemplateHeader+"\nresource \"devmesh_agent\" \"main\" {}\n"))
	mustRun(t, "", "create", "quiet", "--template", "agent", "--agent-timeout", "0")
	stdout, stderr := mustRun(t, "", "logs", "quiet")
	if stdout != "" || !strings.Contains(stderr, "Agent main has no log: template agent gives it no startup_script") {
		t.Errorf("logs of an agent without a startup script: %q / %q", stdout, stderr)
	}
}

// TestCLIOpenVSCode: open vscode prints the Remote - SSH link with
// --print, and without a desktop; DIR is needed when the agent has no
// directory, and relative to it otherwise.
func TestCLIOpenVSCode(t *testing.T) {
	cliEnv(t)
	t.Setenv("HOME", t.TempDir()) // no ~/.ssh/config: config-ssh has not run
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	srv := apitest.New(t)
	t.Setenv(cliconfig.EnvURL, srv.URL)
	t.Setenv(cliconfig.EnvToken, srv.Bootstrap(t, "alice", cliAdminPW))
	mustRun(t, "", "create", "dev", "--external")

	stdout, stderr := mustRun(t, "", "open", "vscode", "dev", "/home/alice/my src", "--print")
	if stdout != "vscode://vscode-remote/ssh-remote+devmesh.dev/home/alice/my%20src\n" || !strings.Contains(stderr, "run devmesh config-ssh first") {
		t.Errorf("open vscode --print: %q / %q", stdout, stderr)
	}
	stdout, stderr = mustRun(t, "", "open", "vscode", "dev.main", "/srv")
	if stdout != "vscode://vscode-remote/ssh-remote+devmesh.dev.main/srv\n" || !strings.Contains(stderr, "No desktop to open it on here") {
		t.Errorf("open vscode without a desktop: %q / %q", stdout, stderr)
	}
	for args, want := range map[string]string{
		"dev":            "has no directory of its own: give DIR",
		"dev src":        "want an absolute path",
		"dev.other /srv": `workspace dev has no agent "other"`,
		"nosuchthing /x": "nosuchthing",
	} {
		if _, _, err := runCLI(t, "", append([]string{"open", "vscode"}, strings.Fields(args)...)...); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("open vscode %s: %v, want %q", args, err, want)
		}
	}
}
