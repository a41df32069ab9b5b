//go:build !unix && !windows

package tunnel

import (
	"context"
	"os"
)

// WatchWindowSize reports no size changes where SIGWINCH does not exist.
func WatchWindowSize(ctx context.Context, _ *os.File) <-chan WindowSize {
	out := make(chan WindowSize)
	go func() {
		<-ctx.Done()
		close(out)
	}()
	return out
}
