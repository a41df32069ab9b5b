package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/devmesh/devmesh/coordinator"
	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/provision/tfprovider/tfprovidertest"
)

// netnsSubnet is the /16 the test's namespaces get their /30s from: apart
// from provision's TestNetnsTemplate (10.251, 10.252), which may run at
// the same time.
const netnsSubnet = "10.253"

// hostIPv4 returns an IPv4 address of this host other than loopback: the
// namespaces route to it through their veth, so a coordinator listening
// there is reachable from inside (127.0.0.1 is the namespace's own).
func hostIPv4() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || strings.HasPrefix(ifc.Name, "dm") {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if p, ok := a.(*net.IPNet); ok && p.IP.To4() != nil && !p.IP.IsLinkLocalUnicast() {
				return p.IP.String()
			}
		}
	}
	return ""
}

// TestNetnsTemplateFlow is issue 4's test 2: the whole flow with the netns
// template, whose agent runs inside a network namespace behind a NAT of
// its own, reached over the tailnet by a node of the owner outside it.
// The coordinator listens on an address of the host (not loopback), which
// the namespace reaches through its veth, as the template's README says.
func TestNetnsTemplateFlow(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("the netns template needs Linux and root (CI runs this as root)")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the netns template needs %s (apt-get install iproute2 iptables)", tool)
		}
	}
	hostIP := hostIPv4()
	if hostIP == "" {
		t.Skip("the host has no IPv4 address besides loopback for the coordinator to listen on")
	}
	if forward, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err == nil {
		t.Cleanup(func() { os.WriteFile("/proc/sys/net/ipv4/ip_forward", forward, 0o644) })
	}
	stateDir := t.TempDir()
	nsOf := func(ws store.Workspace) (ns, hostIf, dir string) {
		short := strings.ReplaceAll(ws.UUID, "-", "")[:8]
		return "dm-" + short, "dmh" + short, filepath.Join(stateDir, ws.UUID)
	}
	nsExists := func(ns string) bool {
		_, err := os.Stat("/var/run/netns/" + ns)
		return err == nil
	}
	runTemplateFlow(t, templateFlow{
		template: "netns",
		vars:     map[string]string{"state_dir": stateDir, "subnet_prefix": netnsSubnet},
		coordOpts: []coordtest.Option{func(c *coordinator.Config) {
			c.Listen = hostIP + ":0"
			c.STUNListen = hostIP + ":0"
		}},
		// The session runs inside the namespace: its only interface
		// besides lo is eth0, on the namespace's private subnet.
		sshCheck: "cat /proc/net/fib_trie",
		sshWant:  netnsSubnet + ".",
		started: func(t *testing.T, ws store.Workspace) {
			ns, _, dir := nsOf(ws)
			pid := pidFile(t, filepath.Join(dir, "agent.pid"))
			if pid == 0 || !tfprovidertest.ProcessAlive(pid) {
				t.Fatalf("no agent process running for the workspace (pid %d)", pid)
			}
			out, err := exec.Command("ip", "netns", "identify", strconv.Itoa(pid)).Output()
			if err != nil || strings.TrimSpace(string(out)) != ns {
				t.Fatalf("the agent runs in namespace %q (%v), want %s", out, err, ns)
			}
			if rules, _ := exec.Command("iptables", "-t", "nat", "-S", "POSTROUTING").Output(); !strings.Contains(string(rules), "devmesh-"+ns+" -j MASQUERADE") {
				t.Errorf("no MASQUERADE rule for %s:\n%s", ns, rules)
			}
		},
		stopped: func(t *testing.T, ws store.Workspace) {
			ns, _, dir := nsOf(ws)
			if _, err := os.Stat(filepath.Join(dir, "agent.pid")); !os.IsNotExist(err) {
				t.Errorf("agent.pid after stop: %v", err)
			}
			if !nsExists(ns) {
				t.Errorf("stop removed the namespace %s", ns)
			}
		},
		deleted: func(t *testing.T, ws store.Workspace) {
			ns, hostIf, dir := nsOf(ws)
			if nsExists(ns) {
				t.Errorf("namespace %s after delete", ns)
			}
			if err := exec.Command("ip", "link", "show", hostIf).Run(); err == nil {
				t.Errorf("veth %s after delete", hostIf)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("workspace directory after delete: %v", err)
			}
		},
		cleanup: func(ws store.Workspace) { // whatever happened, leave no namespace behind
			ns, hostIf, dir := nsOf(ws)
			if !nsExists(ns) {
				return
			}
			cmd := exec.Command("sh", filepath.Join("..", "..", "examples", "templates", "netns", "netns-down.sh"))
			cmd.Env = append(os.Environ(), "NS="+ns, "HOST_IF="+hostIf, "DIR="+dir, "STATE_DIR="+stateDir)
			cmd.Run()
		},
	})
}
