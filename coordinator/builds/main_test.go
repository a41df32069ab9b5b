package builds

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/devmesh/devmesh/provision/tfprovider/tfprovidertest"
)

// The test binary plays three parts besides running tests: terraform's
// devmesh provider (through the plugin mirror, as the devmesh binary
// would), a stand-in for `devmesh agent` in the local template, and a
// coordinator's build queue in a child process that a test kills.
func TestMain(m *testing.M) {
	tfprovidertest.ServeIfPlugin()
	if len(os.Args) > 1 && os.Args[1] == "agent" {
		os.Exit(fakeAgent())
	}
	if os.Getenv(childDBEnv) != "" {
		os.Exit(runChildQueue())
	}
	os.Exit(m.Run())
}

// fakeAgentReport is what the stand-in agent writes to agent.json in its
// working directory.
type fakeAgentReport struct {
	PID   int    `json:"pid"`
	URL   string `json:"url"`
	Token string `json:"token"`
}

// fakeAgent records how it was started, then waits for SIGTERM or SIGINT
// as the real agent runs until stopped.
func fakeAgent() int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	b, _ := json.Marshal(fakeAgentReport{PID: os.Getpid(), URL: os.Getenv("DEVMESH_URL"), Token: os.Getenv("DEVMESH_AGENT_TOKEN")})
	if err := os.WriteFile(filepath.Join(".", "agent.json.tmp"), b, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "fake agent:", err)
		return 1
	}
	if err := os.Rename("agent.json.tmp", "agent.json"); err != nil {
		fmt.Fprintln(os.Stderr, "fake agent:", err)
		return 1
	}
	<-sig
	return 0
}
