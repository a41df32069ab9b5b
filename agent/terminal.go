package agent

import (
	"context"
	"io"

	"github.com/devmesh/devmesh/agent/sshd"
	"github.com/devmesh/devmesh/agent/webterm"
	"github.com/devmesh/devmesh/coordinator/client"
)

// serveTerminal serves the browser terminal (agent/webterm) until ctx
// ends: shells like SSH sessions', reached over WebRTC or the
// coordinator's relay.
func (a *Agent) serveTerminal(ctx context.Context, m client.AgentManifest, srv *sshd.Server) {
	log := a.log.With("component", "webterm")
	mgr, err := webterm.NewManager(webterm.ManagerOptions{
		Start: func(out io.Writer) (webterm.Shell, error) {
			return srv.StartTerminal(sshd.TerminalOptions{Output: out})
		},
		Logger: log,
	})
	if err != nil {
		log.Error("browser terminal unavailable", "err", err)
		return
	}
	svc, err := webterm.NewService(webterm.Options{API: a.api, Manager: mgr, AgentUUID: m.AgentUUID, Owner: m.Owner, Logger: log})
	if err != nil {
		mgr.Close()
		log.Error("browser terminal unavailable", "err", err)
		return
	}
	if err := svc.Run(ctx); err != nil && ctx.Err() == nil {
		log.Error("browser terminal stopped", "err", err)
	}
}
