package webterm_test

import (
	"testing"

	"github.com/devmesh/devmesh/internal/leakcheck"
)

// TestMain fails the package's tests if they leave goroutines behind
// (the agent's peer connections, relays and sessions included).
func TestMain(m *testing.M) { leakcheck.Main(m) }
