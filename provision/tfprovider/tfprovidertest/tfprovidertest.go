// Package tfprovidertest lets a test binary stand in for the devmesh
// binary as terraform's devmesh provider plugin, so tests can run real
// terraform against the provider without building cmd/devmesh:
//
//	func TestMain(m *testing.M) {
//		tfprovidertest.ServeIfPlugin()
//		os.Exit(m.Run())
//	}
//
// and use Binary(t) wherever a devmesh binary is wanted
// (provision.Options.DevmeshBinary, tfprovider.InstallMirror).
package tfprovidertest

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/devmesh/devmesh/provision/tfprovider"
)

// ServeIfPlugin serves the provider and exits if terraform started this
// process through a mirror pointing at it (the mirror runs
// `BINARY terraform-provider`, and terraform sets its plugin handshake
// variable); otherwise it returns at once. Call it first in TestMain.
func ServeIfPlugin() {
	if len(os.Args) < 2 || os.Args[1] != tfprovider.Subcommand || !tfprovider.StartedByTerraform() {
		return
	}
	if err := tfprovider.Serve(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "tfprovidertest:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Binary returns the absolute path of the running test binary.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
