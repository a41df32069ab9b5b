//go:build linux

package sshd

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// tcflag is the type of the termios flag fields.
type tcflag = uint32

// The termios ioctls.
const (
	ioctlGetTermios = unix.TCGETS
	ioctlSetTermios = unix.TCSETS
)

// unlockPTY unlocks the pty master fd and returns its terminal's path.
func unlockPTY(fd int) (string, error) {
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		return "", err
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil { // unlockpt
		return "", err
	}
	return "/dev/pts/" + strconv.FormatUint(uint64(n), 10), nil
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
