//go:build linux

package vpn_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/devmesh/devmesh/internal/netlab"
	"github.com/devmesh/devmesh/tunnel/daemon"
)

func TestMain(m *testing.M) { netlab.Main(m) }

// box is a lab host with an /etc of its own (an overlay in a private
// mount namespace, held open by a sleeping process): VPN mode's resolver
// changes land there, never in the host's /etc. Commands run in it
// through nsenter (network and mount namespaces).
type box struct {
	t    *testing.T
	h    *netlab.Host
	pid  int
	dir  string
	cli  *netlab.CLI
	sock string
}

// upstreamDNS is the box's original resolver (nothing answers there; only
// the file's contents matter).
const upstreamDNS = "198.18.0.250"

func newBox(t *testing.T, h *netlab.Host, cli *netlab.CLI) *box {
	t.Helper()
	dir, err := os.MkdirTemp("", "dmvpn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ov := filepath.Join(dir, "ov")
	script := fmt.Sprintf(`set -e
mkdir -p %[1]s && mount -t tmpfs tmpfs %[1]s && mkdir %[1]s/u %[1]s/w
mount -t overlay overlay -o lowerdir=/etc,upperdir=%[1]s/u,workdir=%[1]s/w /etc
rm -f /etc/resolv.conf && printf 'nameserver %[2]s\nsearch example.org\n' > /etc/resolv.conf
echo ready
exec sleep 3600`, ov, upstreamDNS)
	cmd := h.Command(context.Background(), "unshare", "-m", "--propagation", "private", "sh", "-c", script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("box in %s did not start: %q %v", h.NS, line, err)
	}
	return &box{t: t, h: h, pid: cmd.Process.Pid, dir: dir, cli: cli, sock: filepath.Join(dir, "d.sock")}
}

// command runs name in the box with the CLI's login and the daemon's
// paths in the environment.
func (b *box) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", fmt.Sprint(b.pid), "-m", "-n", "--", name}, args...)...)
	cmd.Env = append(append(os.Environ(), b.h.Env()...), "DEVMESH_CONFIG_DIR="+b.cli.Dir,
		daemon.EnvSocket+"="+b.sock, daemon.EnvStateDir+"="+filepath.Join(b.dir, "state"))
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// try runs name in the box (at most timeout) and returns its combined
// output.
func (b *box) try(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := b.command(ctx, name, args...).CombinedOutput()
	return string(out), err
}

func (b *box) must(name string, args ...string) string {
	b.t.Helper()
	out, err := b.try(90*time.Second, name, args...)
	if err != nil {
		b.t.Fatalf("%s: %s %s: %v\n%s", b.h.NS, name, strings.Join(args, " "), err, out)
	}
	return out
}

// startBG starts name in the box in the background, logging to a file;
// the test's cleanup ends it (SIGTERM, then SIGKILL).
func (b *box) startBG(logName string, name string, args ...string) *daemonProc {
	b.t.Helper()
	logPath := filepath.Join(b.dir, logName+".log")
	f, err := os.Create(logPath)
	if err != nil {
		b.t.Fatal(err)
	}
	defer f.Close()
	cmd := b.command(context.Background(), name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	p := &daemonProc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	b.t.Cleanup(func() {
		p.stop()
		if b.t.Failed() {
			out, _ := os.ReadFile(logPath)
			b.t.Logf("%s log in %s:\n%s", logName, b.h.NS, out)
		}
	})
	return p
}

// daemonProc is a `devmesh daemon` in a box.
type daemonProc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	once sync.Once
}

// startDaemon starts the daemon in the box and waits until it answers.
// wrap (e.g. setpriv and its flags) runs the daemon under it.
func (b *box) startDaemon(wrap ...string) *daemonProc {
	b.t.Helper()
	logPath := filepath.Join(b.dir, fmt.Sprintf("daemon-%d.log", time.Now().UnixNano()))
	f, err := os.Create(logPath)
	if err != nil {
		b.t.Fatal(err)
	}
	defer f.Close()
	args := append(append(wrap[:len(wrap):len(wrap)], netlab.Binary(b.t)), "daemon", "--hostname", "laptop")
	cmd := b.command(context.Background(), args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	p := &daemonProc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	b.t.Cleanup(func() {
		p.stop()
		if b.t.Failed() {
			out, _ := os.ReadFile(logPath)
			b.t.Logf("daemon log in %s:\n%s", b.h.NS, out)
		}
	})
	c := daemon.NewClient(b.sock)
	defer c.Close()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := c.Status(ctx)
		cancel()
		if err == nil && st.State == "Running" {
			return p
		}
		select {
		case <-p.done:
			out, _ := os.ReadFile(logPath)
			b.t.Fatalf("daemon in %s exited:\n%s", b.h.NS, out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	b.t.Fatalf("daemon in %s did not come up", b.h.NS)
	return nil
}

// stop ends the daemon cleanly (SIGTERM), waiting for it.
func (p *daemonProc) stop() {
	p.once.Do(func() { p.cmd.Process.Signal(syscall.SIGTERM) })
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// kill ends the daemon with SIGKILL: nothing of it runs any cleanup.
func (p *daemonProc) kill() {
	p.once.Do(func() { p.cmd.Process.Kill() })
	<-p.done
}

// status is `devmesh daemon status -o json` in the box.
func (b *box) status() daemon.Status {
	b.t.Helper()
	var st daemon.Status
	if err := json.Unmarshal([]byte(b.must(netlab.Binary(b.t), "daemon", "status", "-o", "json")), &st); err != nil {
		b.t.Fatal(err)
	}
	return st
}

// stdout runs name in the box and returns its standard output only:
// iproute2 writes transient notes to stderr (e.g. "Peer netns reference
// is invalid." while another test's namespace goes away) that say
// nothing about this box.
func (b *box) stdout(name string, args ...string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := b.command(ctx, name, args...)
	var errOut strings.Builder
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		b.t.Fatalf("%s: %s %s: %v\n%s%s", b.h.NS, name, strings.Join(args, " "), err, out, errOut.String())
	}
	return string(out)
}

// netState is what VPN mode may change in the box: links, routes (every
// table), rules, the resolver configuration and /etc's file list.
func (b *box) netState() string {
	b.t.Helper()
	// Wait out IPv6 duplicate address detection on eth0, which changes
	// addresses and local routes on its own.
	for deadline := time.Now().Add(10 * time.Second); strings.Contains(b.must("ip", "-6", "addr"), "tentative") && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	var sb strings.Builder
	for _, c := range [][]string{
		{"ip", "-o", "link"}, {"ip", "route", "show", "table", "all"}, {"ip", "-6", "route", "show", "table", "all"},
		{"ip", "rule"}, {"ip", "-6", "rule"}, {"ip", "-o", "addr"}, {"cat", "/etc/resolv.conf"}, {"ls", "-a", "/etc"},
	} {
		fmt.Fprintf(&sb, "$ %s\n%s", strings.Join(c, " "), b.stdout(c[0], c[1:]...))
	}
	return sb.String()
}

// vpnCount counts the devmesh0 devices and the routes through them.
func (b *box) vpnCount() (devices, routes4, routes6, rules int) {
	b.t.Helper()
	devices = strings.Count(b.must("ip", "-o", "link"), " devmesh0:")
	routes4 = strings.Count(b.must("ip", "route", "show", "table", "all", "dev", "devmesh0"), "100.64.0.0/10")
	routes6 = strings.Count(b.must("ip", "-6", "route", "show", "table", "all", "dev", "devmesh0"), "fd7a:115c:a1e0::/48")
	rules = strings.Count(b.must("ip", "rule"), "lookup 52")
	return
}
