//go:build !linux

package agent

import (
	"fmt"
	"runtime"

	"github.com/devmesh/devmesh/coordinator/client"
)

// listeningPorts is not supported here: the agent finds ports in Linux's
// /proc only.
func listeningPorts(portScope) ([]client.ListeningPort, error) {
	return nil, fmt.Errorf("listening ports are reported by agents on Linux only; this agent runs on %s", runtime.GOOS)
}
