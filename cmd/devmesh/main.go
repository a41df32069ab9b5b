// Command devmesh is the single binary for every devmesh role: the
// coordinator, the workspace agent, the client daemon and the CLI.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	cmd, err := newRootCmd().ExecuteContextC(ctx)
	stop()
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		reportError(os.Stderr, cmd, err)
		os.Exit(1)
	}
}

// exitError carries an exit status through cobra without printing
// anything more (for example a remote command's status in `devmesh ssh`).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
