package coordtest

import "github.com/devmesh/devmesh/coordinator"

// WithoutProvisioning starts the coordinator without terraform: no
// templates, no template workspaces.
func WithoutProvisioning() Option {
	return func(c *coordinator.Config) { c.DisableProvisioning = true }
}

// WithDevmeshBinary sets the devmesh binary terraform runs as the devmesh
// provider and local agents run, e.g. os.Getenv("DEVMESH_BIN") (set by
// `make test`), or a test binary that serves the provider (see
// provision/tfprovider/tfprovidertest).
func WithDevmeshBinary(path string) Option {
	return func(c *coordinator.Config) { c.DevmeshBinary = path }
}
