package provision

import (
	"os"
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
		os.Exit(tfprovidertest.RunFakeAgent())
	}
	if len(os.Args) > 2 && netTools[os.Args[1]] != nil {
		os.Exit(netTools[os.Args[1]](os.Args[2]))
	}
	os.Exit(m.Run())
}
