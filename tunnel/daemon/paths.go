package daemon

import (
	"fmt"
	"os"
	"path/filepath"
)

// Environment variables naming the daemon's places (the CLI's
// --state-dir and --socket flags bind to these too).
const (
	EnvStateDir = "DEVMESH_STATE_DIR"
	EnvSocket   = "DEVMESH_DAEMON_SOCKET"
)

// socketName is the socket's file name.
const socketName = "daemon.sock"

// DefaultStateDir is where the daemon keeps its node's state:
// $DEVMESH_STATE_DIR, else $XDG_STATE_HOME/devmesh, else
// ~/.local/state/devmesh.
func DefaultStateDir() (string, error) {
	if d := os.Getenv(EnvStateDir); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "devmesh"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the state directory (set %s): %w", EnvStateDir, err)
	}
	return filepath.Join(home, ".local", "state", "devmesh"), nil
}

// DefaultSocketPath is the daemon's socket: $DEVMESH_DAEMON_SOCKET, else
// $XDG_RUNTIME_DIR/devmesh/daemon.sock, else daemon.sock in the state
// directory.
func DefaultSocketPath() (string, error) {
	if p := os.Getenv(EnvSocket); p != "" {
		return p, nil
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "devmesh", socketName), nil
	}
	dir, err := DefaultStateDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, socketName), nil
}
