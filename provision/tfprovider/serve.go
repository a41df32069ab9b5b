package tfprovider

import (
	"context"
	"os"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
)

// Serve serves the provider to the terraform process that started this
// one, over go-plugin's handshake on stdout and gRPC on a local socket. It
// returns when terraform shuts the plugin down, or ErrNotPlugin at once if
// terraform did not start this process.
//
// Terraform, not ctx, decides when the plugin stops: go-plugin ignores
// SIGINT in the plugin so that terraform can finish a graceful stop, and
// callers should not cancel ctx on signals either (pass
// context.WithoutCancel). If terraform dies without shutting the plugin
// down, Serve exits the process: an orphaned provider has no one to serve.
func Serve(ctx context.Context) error {
	if !StartedByTerraform() {
		return ErrNotPlugin
	}
	go exitWithParent(os.Getppid(), time.Second)
	return providerserver.Serve(ctx, New, providerserver.ServeOpts{
		Address:         Address,
		ProtocolVersion: 6,
	})
}

// exitWithParent exits the process once its parent, ppid, is gone (the
// process is then re-parented, so its parent pid changes).
func exitWithParent(ppid int, every time.Duration) {
	for range time.Tick(every) {
		if os.Getppid() != ppid {
			os.Exit(1)
		}
	}
}
