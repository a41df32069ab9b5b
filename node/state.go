package node

import (
	"os"
	"path/filepath"
)

// stateFile is where tsnet keeps a node's keys and profile inside Dir.
const stateFile = "tailscaled.state"

// HasState reports whether dir holds saved node state. A node started
// on that state reuses its machine and node keys, so once it has been
// registered it reconnects without an auth key and keeps its addresses.
// (The state is written before registration succeeds, so its presence
// alone does not prove the node was ever registered.)
func HasState(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, stateFile))
	return err == nil && fi.Mode().IsRegular() && fi.Size() > 0
}
