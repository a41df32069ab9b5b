//go:build linux

package agent

import (
	"bufio"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/devmesh/devmesh/coordinator/client"
)

func TestParseProcAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		addr string
		port int
	}{
		{"0100007F:1F90", "127.0.0.1", 8080},
		{"00000000:0016", "0.0.0.0", 22},
		{"00000000000000000000000001000000:0016", "::1", 22},
		{"00000000000000000000000000000000:01BB", "::", 443},
		{"0000000000000000FFFF00000100007F:0050", "127.0.0.1", 80}, // v4-mapped
	} {
		addr, port, err := parseProcAddr(tc.in)
		if err != nil || addr != netip.MustParseAddr(tc.addr) || port != tc.port {
			t.Errorf("parseProcAddr(%q) = %v, %d, %v; want %s, %d", tc.in, addr, port, err, tc.addr, tc.port)
		}
	}
	for _, bad := range []string{"", "0100007F", "0100007F:", "01007F:0050", "zz00007F:0050", "0100007F:10000"} {
		if _, _, err := parseProcAddr(bad); err == nil {
			t.Errorf("parseProcAddr(%q) succeeded", bad)
		}
	}
}

// TestListeningPorts runs two listeners in processes of their own, one
// with the workspace's environment (as an SSH session's child would have)
// and one without, and a listener of the agent's own (this process).
func TestListeningPorts(t *testing.T) {
	scope := portScope{marker: []string{"DEVMESH_WORKSPACE=dev", "DEVMESH_WORKSPACE_OWNER=alice"}}
	inWS := startListener(t, "DEVMESH_WORKSPACE=dev", "DEVMESH_WORKSPACE_OWNER=alice")
	other := startListener(t, "DEVMESH_WORKSPACE=dev", "DEVMESH_WORKSPACE_OWNER=bob")
	own, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	ownPort := own.Addr().(*net.TCPAddr).Port

	find := func(ports []client.ListeningPort, port int) *client.ListeningPort {
		for i := range ports {
			if ports[i].Port == port {
				return &ports[i]
			}
		}
		return nil
	}
	ports, err := listeningPorts(scope)
	if err != nil {
		t.Fatal(err)
	}
	if p := find(ports, inWS); p == nil || p.Address != "127.0.0.1" || p.Process == "" {
		t.Errorf("the workspace's listener on %d: %+v in %+v", inWS, p, ports)
	}
	if p := find(ports, other); p != nil {
		t.Errorf("another workspace's listener on %d reported: %+v", other, p)
	}
	if p := find(ports, ownPort); p != nil {
		t.Errorf("the agent's own listener on %d reported: %+v", ownPort, p)
	}

	scope.all = true // an external workspace: every listener but the agent's
	ports, err = listeningPorts(scope)
	if err != nil {
		t.Fatal(err)
	}
	if find(ports, inWS) == nil || find(ports, other) == nil || find(ports, ownPort) != nil {
		t.Errorf("external workspace: want %d and %d but not %d: %+v", inWS, other, ownPort, ports)
	}
}

// startListener runs this test binary as a process with env added that
// listens on a loopback port until the test ends; it returns the port.
func startListener(t *testing.T, env ...string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestListenerProcess$")
	cmd.Env = append(append(os.Environ(), "DEVMESH_TEST_LISTENER=1"), env...)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	port, perr := strconv.Atoi(line[:max(len(line)-1, 0)])
	if err != nil || perr != nil {
		t.Fatalf("listener process: %q, %v", line, err)
	}
	return port
}

// TestListenerProcess is not a test: the process startListener runs.
func TestListenerProcess(t *testing.T) {
	if os.Getenv("DEVMESH_TEST_LISTENER") != "1" {
		t.Skip("helper process for TestListeningPorts")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Exit(1)
	}
	os.Stdout.WriteString(strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "\n")
	os.Stdin.Read(make([]byte, 1)) // until the test closes stdin
	os.Exit(0)
}
