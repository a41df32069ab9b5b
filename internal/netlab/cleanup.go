//go:build linux

package netlab

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cleanLeftovers deletes the namespaces of labs whose process is gone (a
// test binary that crashed or was killed before its cleanups ran).
func cleanLeftovers(t testing.TB) {
	ents, err := os.ReadDir(nsDir)
	if err != nil {
		return // no namespaces at all
	}
	for _, e := range ents {
		pid, ok := ownerPID(e.Name())
		if !ok || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		t.Logf("netlab: deleting namespace %s left by process %d", e.Name(), pid)
		deleteNS(e.Name())
	}
}

// ownerPID parses the pid out of a lab namespace name, nl<pid>-<n>-<role>.
func ownerPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "nl")
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(digits)
	return pid, err == nil && pid > 0
}

// processAlive reports whether pid names a live process (a zombie counts
// as gone).
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// deleteNS kills every process in namespace ns, then deletes it.
func deleteNS(ns string) {
	for range 50 {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	exec.Command("ip", "netns", "del", ns).Run()
}
