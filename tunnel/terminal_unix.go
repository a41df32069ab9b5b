//go:build unix

package tunnel

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

// WatchWindowSize sends the terminal's size on every SIGWINCH until ctx
// ends, then closes the channel.
func WatchWindowSize(ctx context.Context, tty *os.File) <-chan WindowSize {
	out := make(chan WindowSize, 1)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGWINCH)
	go func() {
		defer close(out)
		defer signal.Stop(sigs)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sigs:
			}
			w, h, err := term.GetSize(int(tty.Fd()))
			if err != nil {
				continue
			}
			select {
			case out <- WindowSize{Width: w, Height: h}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// TerminalSize is the size of the terminal tty.
func TerminalSize(tty *os.File) (width, height int, err error) {
	return term.GetSize(int(tty.Fd()))
}

// MakeRaw puts the terminal tty into raw mode and returns how to restore it.
func MakeRaw(tty *os.File) (restore func(), err error) {
	fd := int(tty.Fd())
	state, err := term.MakeRaw(fd)
	if err != nil {
		return nil, err
	}
	return func() { _ = term.Restore(fd, state) }, nil
}
