package main

import (
	"os"
	"strings"
	"testing"
)

// TestMain lets the test binary be the devmesh binary: run with a devmesh
// command instead of test flags (as terraform runs `BINARY
// terraform-provider`, or a template runs `BINARY agent`), it runs that
// command. Tests can then hand os.Executable() to a coordinator as its
// devmesh binary, without building cmd/devmesh first.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-") {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}
