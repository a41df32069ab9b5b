package sshd

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCommandPipesGrown checks that a command's stdin and stdout are
// pipes of pipeSize, so that bulk transfers (ssh WS cat) move large
// chunks per wakeup. The command reports which pipes it has; the test
// finds the server's ends of them among its own descriptors.
func TestCommandPipesGrown(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.client(t)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stdin, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// readlink prints pipe:[inode] for each; cat then holds the command
	// open until the test closes stdin.
	if err := s.Start("readlink /proc/self/fd/0 /proc/self/fd/1; cat"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(out)
	var pipes []string
	for range 2 {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the command's pipes: %v", err)
		}
		pipes = append(pipes, strings.TrimSpace(l))
	}
	for i, want := range pipes {
		if !strings.HasPrefix(want, "pipe:") {
			t.Fatalf("fd %d of the command is %q, not a pipe", i, want)
		}
		size := ownPipeSize(t, want)
		if size != pipeSize {
			t.Errorf("fd %d of the command (%s): pipe size %d, want %d", i, want, size, pipeSize)
		}
	}
}

// ownPipeSize returns the size of the pipe (as readlink names it) that
// one of this process's descriptors is an end of.
func ownPipeSize(t *testing.T, pipe string) int {
	t.Helper()
	fds, err := filepath.Glob("/proc/self/fd/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if target, err := os.Readlink(fd); err != nil || target != pipe {
			continue
		}
		f, err := os.Open(fd)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		size, err := unix.FcntlInt(f.Fd(), unix.F_GETPIPE_SZ, 0)
		if err != nil {
			t.Fatal(err)
		}
		return size
	}
	t.Fatalf("no descriptor of this process is an end of %s", pipe)
	return 0
}
