package builds

import (
	"os"
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
		os.Exit(tfprovidertest.RunFakeAgent())
	}
	if os.Getenv(childDBEnv) != "" {
		os.Exit(runChildQueue())
	}
	os.Exit(m.Run())
}
