package control

import (
	"testing"

	"github.com/devmesh/devmesh/internal/leakcheck"
)

// TestMain fails the package's tests if they leave goroutines running;
// tests that call leakcheck.Check also get the blame for their own.
func TestMain(m *testing.M) { leakcheck.Main(m) }
