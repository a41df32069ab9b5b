package coordinator

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/devmesh/devmesh/coordinator/builds"
	"github.com/devmesh/devmesh/coordinator/schedule"
	"github.com/devmesh/devmesh/provision"
)

// startProvisioning checks terraform, then starts the build queue (which
// first marks builds interrupted by a previous stop). A missing or too old
// terraform is an error here, at startup, not at the first build.
func (s *Server) startProvisioning(ctx context.Context) error {
	if s.cfg.DisableProvisioning {
		s.log.Warn("provisioning is disabled: templates and template workspaces are unavailable")
		return nil
	}
	version, err := provision.CheckTerraform(ctx, s.cfg.TerraformPath)
	if err != nil {
		return fmt.Errorf("provisioning: %w (install terraform 1.5 or newer or OpenTofu on PATH, or set --terraform-path; --disable-provisioning runs without templates)", err)
	}
	bin := s.cfg.DevmeshBinary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return fmt.Errorf("provisioning: find the devmesh binary: %w", err)
		}
	}
	s.devmeshBin = bin
	runner, err := provision.New(provision.Options{
		TerraformPath: s.cfg.TerraformPath,
		WorkRoot:      filepath.Join(s.cfg.DataDir, "provisioner"),
		DevmeshBinary: bin,
		Logger:        s.log.With("component", "provision"),

		ProviderMirrors:       s.cfg.ProviderMirrors,
		AllowProviderDownload: s.cfg.AllowProviderDownload,
	})
	if err != nil {
		return fmt.Errorf("provisioning: %w", err)
	}
	workers := s.cfg.Provisioners
	if workers <= 0 {
		workers = builds.DefaultWorkers
	}
	q, err := builds.New(builds.Options{
		Store:            s.store,
		Runner:           runner,
		AccessURL:        s.accessURL,
		Fingerprint:      s.agentFingerprint(),
		Workers:          workers,
		RemoveAgentNodes: s.removeAgentNodes,
		Logger:           s.log.With("component", "builds"),
	})
	if err != nil {
		return err
	}
	if err := q.Start(ctx); err != nil {
		return err
	}
	s.builds = q
	if err := s.startScheduler(q); err != nil {
		return err
	}
	s.log.Info("provisioning", "terraform", runner.TerraformPath(), "version", version, "workers", workers)
	return nil
}

// startScheduler runs the workspace scheduler (autostart, autostop)
// until Close; its first pass acts on what fell due while the
// coordinator was down.
func (s *Server) startScheduler(q *builds.Queue) error {
	sch, err := schedule.New(schedule.Options{Store: s.store, Wake: q.Wake, Logger: s.log.With("component", "schedule")})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sch.Run(ctx)
	}()
	s.stopScheduler = func() {
		cancel()
		<-done
	}
	return nil
}

// removeAgentNodes takes the tailnet nodes of a removed agent off the
// tailnet (the build queue has already deleted the agent and revoked its
// auth keys). A node registering right now may be in the registry before
// the store shows it, or the other way round: both are looked at.
func (s *Server) removeAgentNodes(ctx context.Context, agentID int64) error {
	ids := map[int64]bool{}
	nodes, err := s.store.NodesOfAgent(ctx, agentID)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		ids[n.ID] = true
	}
	for _, n := range s.control.Registry().Nodes(0) {
		if n.AgentID == agentID {
			ids[int64(n.ID)] = true
		}
	}
	for id := range ids {
		if err := s.control.DeleteNode(ctx, id); err != nil {
			return fmt.Errorf("delete node %d: %w", id, err)
		}
	}
	return nil
}
