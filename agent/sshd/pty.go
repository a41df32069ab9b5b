package sshd

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// ptyRequest is the payload of a "pty-req" channel request (RFC 4254 6.2).
type ptyRequest struct {
	Term     string
	Columns  uint32
	Rows     uint32
	WidthPx  uint32
	HeightPx uint32
	Modes    string
}

// windowChange is the payload of a "window-change" request (RFC 4254 6.7).
type windowChange struct {
	Columns  uint32
	Rows     uint32
	WidthPx  uint32
	HeightPx uint32
}

func parsePtyRequest(payload []byte) (*ptyRequest, bool) {
	var p ptyRequest
	if err := gossh.Unmarshal(payload, &p); err != nil {
		return nil, false
	}
	return &p, true
}

func (p *ptyRequest) window() windowChange {
	return windowChange{Columns: p.Columns, Rows: p.Rows, WidthPx: p.WidthPx, HeightPx: p.HeightPx}
}

// termFlag says where a terminal-mode opcode's flag lives.
type termFlag struct {
	field byte // 'i', 'o', 'c' or 'l' for Iflag, Oflag, Cflag, Lflag
	bit   uint32
}

// Terminal-mode opcodes of RFC 4254 section 8 that Linux supports. The
// client sends its local terminal's settings so that, for example, the
// erase character matches what its Backspace key sends.
var (
	termChars = map[byte]int{
		1: unix.VINTR, 2: unix.VQUIT, 3: unix.VERASE, 4: unix.VKILL,
		5: unix.VEOF, 6: unix.VEOL, 7: unix.VEOL2, 8: unix.VSTART,
		9: unix.VSTOP, 10: unix.VSUSP, 12: unix.VREPRINT, 13: unix.VWERASE,
		14: unix.VLNEXT, 18: unix.VDISCARD,
	}
	termFlags = map[byte]termFlag{
		30: {'i', unix.IGNPAR}, 31: {'i', unix.PARMRK}, 32: {'i', unix.INPCK},
		33: {'i', unix.ISTRIP}, 34: {'i', unix.INLCR}, 35: {'i', unix.IGNCR},
		36: {'i', unix.ICRNL}, 37: {'i', unix.IUCLC}, 38: {'i', unix.IXON},
		39: {'i', unix.IXANY}, 40: {'i', unix.IXOFF}, 41: {'i', unix.IMAXBEL},
		42: {'i', unix.IUTF8},
		50: {'l', unix.ISIG}, 51: {'l', unix.ICANON}, 52: {'l', unix.XCASE},
		53: {'l', unix.ECHO}, 54: {'l', unix.ECHOE}, 55: {'l', unix.ECHOK},
		56: {'l', unix.ECHONL}, 57: {'l', unix.NOFLSH}, 58: {'l', unix.TOSTOP},
		59: {'l', unix.IEXTEN}, 60: {'l', unix.ECHOCTL}, 61: {'l', unix.ECHOKE},
		62: {'l', unix.PENDIN},
		70: {'o', unix.OPOST}, 71: {'o', unix.OLCUC}, 72: {'o', unix.ONLCR},
		73: {'o', unix.OCRNL}, 74: {'o', unix.ONOCR}, 75: {'o', unix.ONLRET},
		90: {'c', unix.CS7}, 91: {'c', unix.CS8}, 92: {'c', unix.PARENB},
		93: {'c', unix.PARODD},
	}
)

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
		p := map[byte]*uint32{'i': &t.Iflag, 'o': &t.Oflag, 'c': &t.Cflag, 'l': &t.Lflag}[f.field]
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
	var n uint32
	err = control(ptmx, func(fd int) error {
		var err error
		if n, err = unix.IoctlGetUint32(fd, unix.TIOCGPTN); err != nil {
			return err
		}
		return unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0) // unlockpt
	})
	if err == nil {
		err = setWinsize(ptmx, win)
	}
	if err == nil {
		tty, err = os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(n), 10), os.O_RDWR|unix.O_NOCTTY, 0)
	}
	if err != nil {
		ptmx.Close()
		return nil, nil, fmt.Errorf("open pty: %w", err)
	}
	// Best effort: a terminal whose modes cannot be set still works.
	_ = control(tty, func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			return err
		}
		applyModes(t, []byte(req.Modes))
		return unix.IoctlSetTermios(fd, unix.TCSETS, t)
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
