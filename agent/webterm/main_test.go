package webterm

import (
	"testing"

	"github.com/devmesh/devmesh/internal/leakcheck"
)

// TestMain fails the package's tests if they leave goroutines behind.
func TestMain(m *testing.M) { leakcheck.Main(m) }
