package tfprovidertest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// FakeAgentReport is what the stand-in agent (RunFakeAgent) writes to
// agent.json in its working directory.
type FakeAgentReport struct {
	PID   int      `json:"pid"`
	Args  []string `json:"args"`
	URL   string   `json:"url"`
	Token string   `json:"token"`
	// Fingerprint is DEVMESH_FINGERPRINT, the coordinator's pinned
	// certificate.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// RunFakeAgent stands in for `devmesh agent` in the example templates: it
// records how it was started in agent.json, then waits for SIGTERM or
// SIGINT, as the real agent runs until stopped. Call it from TestMain
// when os.Args[1] is "agent" and exit with its result.
func RunFakeAgent() int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	r := FakeAgentReport{PID: os.Getpid(), Args: os.Args[1:], URL: os.Getenv("DEVMESH_URL"), Token: os.Getenv("DEVMESH_AGENT_TOKEN"),
		Fingerprint: os.Getenv("DEVMESH_FINGERPRINT")}
	b, _ := json.Marshal(r)
	tmp := filepath.Join(".", "agent.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "fake agent:", err)
		return 1
	}
	if err := os.Rename(tmp, "agent.json"); err != nil {
		fmt.Fprintln(os.Stderr, "fake agent:", err)
		return 1
	}
	fmt.Println("fake agent running")
	<-sig
	return 0
}

// WaitFakeAgent waits for a stand-in agent started in home, other than
// the one with pid old, to report; it fails the test with home's
// ../agent.log after 10 s.
func WaitFakeAgent(t testing.TB, home string, old int) FakeAgentReport {
	t.Helper()
	var r FakeAgentReport
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(filepath.Join(home, "agent.json"))
		if err == nil && json.Unmarshal(b, &r) == nil && r.PID != old && ProcessAlive(r.PID) {
			return r
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(filepath.Dir(home), "agent.log"))
			t.Fatalf("no agent started; agent.log:\n%s", log)
		}
	}
}

// ProcessAlive reports whether pid runs (zombies count as gone: nobody may
// reap them in a container).
func ProcessAlive(pid int) bool {
	if runtime.GOOS != "linux" {
		return ProcessExists(pid)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...; comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}
