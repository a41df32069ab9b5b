package provision

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
// devmesh provider plugin (through the mirror, as the devmesh binary would),
// a stand-in for `devmesh agent` in the local and netns templates, and the
// small network tools of the netns test (netTools).
func TestMain(m *testing.M) {
	tfprovidertest.ServeIfPlugin()
	if len(os.Args) > 1 && os.Args[1] == "agent" {
		os.Exit(fakeAgent())
	}
	if len(os.Args) > 2 && netTools[os.Args[1]] != nil {
		os.Exit(netTools[os.Args[1]](os.Args[2]))
	}
	os.Exit(m.Run())
}

// fakeAgentReport is what the stand-in agent writes to agent.json in its
// working directory.
type fakeAgentReport struct {
	PID   int      `json:"pid"`
	Args  []string `json:"args"`
	URL   string   `json:"url"`
	Token string   `json:"token"`
}

// fakeAgent records how it was started, then waits for SIGTERM or SIGINT,
// as the real agent would run until stopped.
func fakeAgent() int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	r := fakeAgentReport{PID: os.Getpid(), Args: os.Args[1:], URL: os.Getenv("DEVMESH_URL"), Token: os.Getenv("DEVMESH_AGENT_TOKEN")}
	b, _ := json.Marshal(r)
	tmp := filepath.Join(".", "agent.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "fake agent:", err)
		return 1
	}
	if err := os.Rename(tmp, "agent.json"); err != nil {
		fmt.Fprintln(os.Stderr, "fake agent:", err)
		return 1
	}
	fmt.Println("fake agent running")
	<-sig
	return 0
}
