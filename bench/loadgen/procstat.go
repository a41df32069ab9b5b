package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ProcStat is a process's CPU time and resident memory at one moment,
// read from /proc (Linux).
type ProcStat struct {
	CPU time.Duration // user + system
	RSS int64         // bytes
}

// clockTick is USER_HZ, 100 on every Linux the project runs on.
const clockTick = 100

// ReadProcStat reads pid's CPU time and RSS.
func ReadProcStat(pid int) (ProcStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcStat{}, err
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ProcStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 22 {
		return ProcStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state); utime is field 14, stime 15, rss 24.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	rssPages, _ := strconv.ParseInt(f[21], 10, 64)
	return ProcStat{
		CPU: time.Duration(ut+st) * time.Second / clockTick,
		RSS: rssPages * int64(os.Getpagesize()),
	}, nil
}
