package agent

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the agent away from the coordinator's server side:
// it reaches the coordinator only through the API client.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/devmesh/devmesh/agent").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/devmesh/devmesh/coordinator/store",
		"github.com/devmesh/devmesh/coordinator/api",
		"github.com/devmesh/devmesh/coordinator/control",
		"github.com/devmesh/devmesh/cmd",
		"database/sql",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range forbidden {
			// database/sql/driver is only interfaces; github.com/google/uuid
			// (through pion/ice) imports it. database/sql itself stays out.
			sub := strings.HasPrefix(dep, bad+"/") && bad != "database/sql"
			if dep == bad || sub {
				t.Errorf("agent depends on %s", dep)
			}
		}
	}
}
