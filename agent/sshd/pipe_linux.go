package sshd

import (
	"os"

	"golang.org/x/sys/unix"
)

// pipeSize is the capacity asked for the pipes of a command's standard
// streams (Linux's default is 64 KiB; unprivileged processes may ask up
// to /proc/sys/fs/pipe-max-size, 1 MiB by default).
const pipeSize = 1 << 20

// growPipe enlarges the pipe f belongs to, so that a bulk transfer wakes
// the command and the copier less often. It is best effort: a smaller
// pipe only costs speed.
func growPipe(f *os.File) {
	// Not f.Fd(), which would switch f to blocking mode.
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize)
	})
}
