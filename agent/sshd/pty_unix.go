//go:build linux || darwin

package sshd

import (
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// termFlag says where a terminal-mode opcode's flag lives.
type termFlag struct {
	field byte   // 'i', 'o', 'c' or 'l' for Iflag, Oflag, Cflag, Lflag
	bit   tcflag // uint32 on Linux, uint64 on macOS
}

// applyModes applies encoded terminal modes to t. Unknown opcodes below 160
// are skipped; parsing stops at TTY_OP_END, at an opcode of 160 or more
// (whose argument format is unknown) or at a truncated entry, as the RFC
// requires.
func applyModes(t *unix.Termios, modes []byte) {
	for len(modes) >= 5 {
		op := modes[0]
		if op == 0 || op >= 160 {
			return
		}
		arg := binary.BigEndian.Uint32(modes[1:5])
		modes = modes[5:]
		if i, ok := termChars[op]; ok {
			t.Cc[i] = uint8(arg)
			continue
		}
		f, ok := termFlags[op]
		if !ok {
			continue
		}
		p := map[byte]*tcflag{'i': &t.Iflag, 'o': &t.Oflag, 'c': &t.Cflag, 'l': &t.Lflag}[f.field]
		if arg != 0 {
			*p |= f.bit
		} else {
			*p &^= f.bit
		}
	}
}

// openPTY allocates a pseudo-terminal configured as the client asked.
//
// It does not use github.com/creack/pty: that package calls File.Fd, which
// puts the master into blocking mode, and then a Read blocked on it cannot
// be interrupted by Close. Here every ioctl goes through SyscallConn, so the
// master stays in the runtime poller and Close always unblocks its readers.
func openPTY(req *ptyRequest, win windowChange) (ptmx, tty *os.File, err error) {
	ptmx, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open pty: %w", err)
	}
	var name string
	err = control(ptmx, func(fd int) error {
		var err error
		name, err = unlockPTY(fd)
		return err
	})
	if err == nil {
		err = setWinsize(ptmx, win)
	}
	if err == nil {
		tty, err = os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY, 0)
	}
	if err != nil {
		ptmx.Close()
		return nil, nil, fmt.Errorf("open pty: %w", err)
	}
	// Best effort: a terminal whose modes cannot be set still works.
	_ = control(tty, func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
		if err != nil {
			return err
		}
		applyModes(t, []byte(req.Modes))
		return unix.IoctlSetTermios(fd, ioctlSetTermios, t)
	})
	return ptmx, tty, nil
}

// setWinsize sets the terminal size of ptmx.
func setWinsize(ptmx *os.File, w windowChange) error {
	// Sizes beyond uint16 are nonsense; clamp rather than wrap.
	clamp := func(v uint32) uint16 { return uint16(min(v, 0xffff)) }
	ws := &unix.Winsize{Col: clamp(w.Columns), Row: clamp(w.Rows), Xpixel: clamp(w.WidthPx), Ypixel: clamp(w.HeightPx)}
	return control(ptmx, func(fd int) error { return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, ws) })
}

// control runs fn on f's descriptor without taking it out of the poller.
func control(f *os.File, fn func(fd int) error) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var fnErr error
	if err := sc.Control(func(fd uintptr) { fnErr = fn(int(fd)) }); err != nil {
		return err
	}
	return fnErr
}
