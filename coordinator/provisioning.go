package coordinator

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"

	"github.com/devmesh/devmesh/coordinator/builds"
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
	s.log.Info("provisioning", "terraform", runner.TerraformPath(), "version", version, "workers", workers)
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

// binaryName is the file name under /bin/ this coordinator serves its own
// devmesh binary at (what devmesh_agent's init script downloads).
func binaryName() string { return "devmesh-" + runtime.GOOS + "-" + runtime.GOARCH }

// serveBinary serves the devmesh binary at /bin/devmesh-OS-ARCH, for this
// process's OS and architecture only: a host of another platform needs a
// devmesh built for it.
func (s *Server) serveBinary(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name != binaryName() || s.devmeshBin == "" {
		msg := fmt.Sprintf("this coordinator serves only %s; put a devmesh built for this platform on the host's PATH\n", binaryName())
		if s.devmeshBin == "" {
			msg = "this coordinator serves no devmesh binary (provisioning is disabled)\n"
		}
		http.Error(w, msg, http.StatusNotFound)
		return
	}
	f, err := os.Open(s.devmeshBin)
	if err != nil {
		s.log.Error("serve devmesh binary", "err", err)
		http.Error(w, "devmesh binary unavailable\n", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		http.Error(w, "devmesh binary unavailable\n", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	http.ServeContent(w, r, name, fi.ModTime(), f)
}
