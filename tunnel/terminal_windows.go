package tunnel

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/term"
)

// consolePoll is how often WatchWindowSize looks at the console's size:
// Windows has no SIGWINCH, and the console's resize events arrive in the
// input queue that the session is reading as a stream.
const consolePoll = 250 * time.Millisecond

// TerminalSize is the size of the console window. On Windows the size
// belongs to the output handle (stdout), not to the input handle tty.
func TerminalSize(*os.File) (width, height int, err error) {
	return term.GetSize(int(os.Stdout.Fd()))
}

// WatchWindowSize sends the console's size whenever it changes until ctx
// ends, then closes the channel.
func WatchWindowSize(ctx context.Context, tty *os.File) <-chan WindowSize {
	out := make(chan WindowSize, 1)
	go func() {
		defer close(out)
		last := WindowSize{}
		last.Width, last.Height, _ = TerminalSize(tty)
		t := time.NewTicker(consolePoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			w, h, err := TerminalSize(tty)
			if err != nil || (WindowSize{w, h}) == last {
				continue
			}
			last = WindowSize{w, h}
			select {
			case out <- last:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// MakeRaw puts the console input tty into raw mode, with VT input
// sequences (arrow keys and the like as the remote expects them), and has
// the console interpret the VT sequences the remote sends to stdout. It
// returns how to restore both.
func MakeRaw(tty *os.File) (restore func(), err error) {
	fd := int(tty.Fd())
	state, err := term.MakeRaw(fd)
	if err != nil {
		return nil, err
	}
	out := windows.Handle(os.Stdout.Fd())
	var mode uint32
	vt := windows.GetConsoleMode(out, &mode) == nil &&
		windows.SetConsoleMode(out, mode|windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING|windows.DISABLE_NEWLINE_AUTO_RETURN) == nil
	return func() {
		if vt {
			_ = windows.SetConsoleMode(out, mode)
		}
		_ = term.Restore(fd, state)
	}, nil
}
