package provision

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// netTools are modes of the test binary for the netns test, run inside
// network namespaces with `ip netns exec`.
var netTools = map[string]func(arg string) int{
	// echo-remote-addr ADDR serves HTTP on ADDR, answering each request
	// with the address it came from; it prints "ready" once listening.
	"echo-remote-addr": func(addr string) int {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("ready")
		http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.RemoteAddr) }))
		return 0
	},
	// fetch URL prints the body of a GET of URL.
	"fetch": func(url string) int {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer resp.Body.Close()
		io.Copy(os.Stdout, resp.Body)
		return 0
	},
}

// needNetAdmin skips unless the test can make namespaces and NAT rules.
func needNetAdmin(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("the netns template needs Linux and root (CI runs this as root)")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the netns template needs %s (apt-get install iproute2 iptables)", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// wanNamespace makes a namespace standing for a host on the internet,
// reachable from the host at addr (a /30 with the host side at .1), and
// returns its name.
func wanNamespace(t *testing.T, hostAddr, wanAddr string) string {
	t.Helper()
	name := "dmtest-wan-" + uuid.NewString()[:6]
	hostIf := "dmtw" + name[len(name)-6:]
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", hostIf).Run()
		exec.Command("ip", "netns", "del", name).Run()
	})
	run(t, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", name)
	run(t, "ip", "addr", "add", hostAddr+"/30", "dev", hostIf)
	run(t, "ip", "link", "set", hostIf, "up")
	run(t, "ip", "-n", name, "addr", "add", wanAddr+"/30", "dev", "eth0")
	run(t, "ip", "-n", name, "link", "set", "eth0", "up")
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// TestNetnsTemplate applies examples/templates/netns for real: the agent
// runs inside the workspace's namespace, reaches a server on the host at
// the host side of its veth, and reaches a server beyond the host through
// the NAT (the server sees the host's address, not the namespace's). Stop
// removes the agent and keeps the namespace; delete removes everything.
func TestNetnsTemplate(t *testing.T) {
	needNetAdmin(t)
	r := newTestRunner(t, Options{})
	archive, err := Pack(filepath.Join("..", "examples", "templates", "netns"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if forward, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err == nil {
		t.Cleanup(func() { os.WriteFile("/proc/sys/net/ipv4/ip_forward", forward, 0o644) })
	}
	stateDir := t.TempDir()
	ws := Workspace{ID: uuid.NewString(), Name: "nsdev", Owner: "alice", AccessURL: "http://127.0.0.1:7070"}
	short := strings.ReplaceAll(ws.ID, "-", "")[:8]
	ns, dir := "dm-"+short, filepath.Join(stateDir, ws.ID)
	// A fresh state dir allocates slot 1 of the /16: 10.251.0.4/30.
	const hostIP, nsIP = "10.251.0.5", "10.251.0.6"
	coordURL := "http://" + hostIP + ":7070"
	vars := map[string]string{"state_dir": stateDir, "subnet_prefix": "10.251", "coordinator_url": coordURL}
	var state []byte
	build := func(tr Transition) BuildResult {
		t.Helper()
		var logs logRecorder
		start := time.Now()
		res, err := r.Build(context.Background(), BuildRequest{Archive: archive, Transition: tr, State: state, Variables: vars, Workspace: ws, Log: logs.log})
		if len(res.State) > 0 {
			state = res.State
		}
		if err != nil {
			t.Fatalf("%s: %v\nlog:\n%s", tr, err, logs.text())
		}
		t.Logf("%s build of the netns template took %v (%s)", tr, time.Since(start), stageTimes(&logs))
		return res
	}
	t.Cleanup(func() { // whatever happened, leave no namespace behind
		if _, err := os.Stat("/var/run/netns/" + ns); err == nil {
			cmd := exec.Command("sh", filepath.Join("..", "examples", "templates", "netns", "netns-down.sh"))
			cmd.Env = append(os.Environ(), "NS="+ns, "HOST_IF=dmh"+short, "DIR="+dir, "STATE_DIR="+stateDir)
			cmd.Run()
		}
	})

	res := build(TransitionStart)
	if len(res.Agents) != 1 || len(res.Metadata) != 1 || res.Metadata[0].Items[0].Value != ns {
		t.Fatalf("agents %+v, metadata %+v", res.Agents, res.Metadata)
	}
	agent := waitAgent(t, dir, 0)
	if agent.URL != coordURL || agent.Token != res.Agents[0].Token {
		t.Errorf("agent started with URL %q, right token: %v", agent.URL, agent.Token == res.Agents[0].Token)
	}
	if got := strings.TrimSpace(run(t, "ip", "netns", "identify", fmt.Sprint(agent.PID))); got != ns {
		t.Fatalf("agent runs in namespace %q, want %q", got, ns)
	}
	if addr, _ := os.ReadFile(filepath.Join(dir, "address")); strings.TrimSpace(string(addr)) != nsIP {
		t.Errorf("namespace address %q, want %s", addr, nsIP)
	}
	if rules := run(t, "iptables", "-t", "nat", "-S", "POSTROUTING"); !strings.Contains(rules, "devmesh-"+ns+" -j MASQUERADE") {
		t.Errorf("no MASQUERADE rule for the namespace:\n%s", rules)
	}

	// The coordinator's side: a server on the host side of the veth.
	ln, err := net.Listen("tcp", hostIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.RemoteAddr) }))
	defer ln.Close()
	self, _ := os.Executable()
	if got := run(t, "ip", "netns", "exec", ns, self, "fetch", "http://"+ln.Addr().String()+"/"); !strings.HasPrefix(got, nsIP+":") {
		t.Errorf("the host sees the namespace as %q, want %s", got, nsIP)
	}

	// Beyond the host: through the NAT.
	wan := wanNamespace(t, "10.252.0.1", "10.252.0.2")
	srv := exec.Command("ip", "netns", "exec", wan, self, "echo-remote-addr", "10.252.0.2:8099")
	stdout, _ := srv.StdoutPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
		t.Fatalf("wan server: %q", line)
	}
	if got := run(t, "ip", "netns", "exec", ns, self, "fetch", "http://10.252.0.2:8099/"); !strings.HasPrefix(got, "10.252.0.1:") {
		t.Errorf("a host beyond the NAT sees the namespace as %q, want the host's 10.252.0.1", got)
	}

	// Stop: the agent goes, the namespace stays.
	build(TransitionStop)
	waitGone(t, agent.PID, 15*time.Second)
	if _, err := os.Stat("/var/run/netns/" + ns); err != nil {
		t.Errorf("stop removed the namespace: %v", err)
	}
	build(TransitionStart)
	again := waitAgent(t, dir, agent.PID)
	if got := strings.TrimSpace(run(t, "ip", "netns", "identify", fmt.Sprint(again.PID))); got != ns {
		t.Errorf("restarted agent in namespace %q", got)
	}

	// Delete: namespace, rules, directory and subnet slot go.
	build(TransitionDelete)
	waitGone(t, again.PID, 15*time.Second)
	if _, err := os.Stat("/var/run/netns/" + ns); !os.IsNotExist(err) {
		t.Errorf("namespace after delete: %v", err)
	}
	if rules := run(t, "iptables", "-t", "nat", "-S"); strings.Contains(rules, "devmesh-"+ns) {
		t.Errorf("NAT rules left after delete:\n%s", rules)
	}
	if rules := run(t, "iptables", "-S", "FORWARD"); strings.Contains(rules, "devmesh-"+ns) {
		t.Errorf("forward rules left after delete:\n%s", rules)
	}
	for _, p := range []string{dir, filepath.Join(stateDir, "slots", "1"), "/etc/netns/" + ns} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s after delete: %v", p, err)
		}
	}
}
