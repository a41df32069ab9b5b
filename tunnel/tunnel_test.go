package tunnel_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/node"
	"github.com/devmesh/devmesh/tunnel"
	"github.com/devmesh/devmesh/tunnel/tunneltest"
)

// fixture is one tailnet: a coordinator, alice's stand-in agent, and
// alice's laptop node.
type fixture struct {
	c      *coordtest.Coordinator
	agent  *tunneltest.Agent
	laptop *node.Node
	ep     tunnel.Endpoint
	// proxyKey is a reusable ephemeral auth key of alice's for helper
	// processes.
	proxyKey string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	start := time.Now()
	c := coordtest.Start(t)
	alice := c.CreateUser(t, "alice", false)
	f := &fixture{c: c}
	f.agent = tunneltest.StartAgent(t, c, c.AgentAuthKey(t, alice, 1))
	f.laptop = tunneltest.StartNode(t, c, c.AuthKey(t, alice, false, true), "laptop")
	f.proxyKey = c.AuthKey(t, alice, true, true)
	f.ep = tunnel.Endpoint{
		Target:  tunnel.Target{Workspace: "dev", Agent: "main"},
		Addr:    f.agent.Addr,
		HostKey: f.agent.Signer.PublicKey(),
	}
	// As the commands do: see node.WaitReachable.
	f.laptop.WaitReachable(t.Context(), f.agent.Addr)
	t.Logf("fixture up in %v", time.Since(start).Round(time.Millisecond))
	return f
}

func (f *fixture) ssh(t *testing.T) *ssh.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := tunnel.DialSSH(ctx, f.laptop, f.ep, tunnel.SSHOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestTunnel runs everything that needs a tailnet against one fixture:
// starting nodes dominates the cost.
func TestTunnel(t *testing.T) {
	f := newFixture(t)
	t.Run("Exec", f.testExec)
	t.Run("Stdin", f.testStdin)
	t.Run("PTY", f.testPTY)
	t.Run("Signal", f.testSignal)
	t.Run("Cipher", f.testCipher)
	t.Run("HostKeyMismatch", f.testHostKeyMismatch)
	t.Run("OpenSSHProxyCommand", f.testOpenSSH)
	t.Run("ForwardTCP", f.testForwardTCP)
	t.Run("ForwardTCPFallbackSSH", f.testForwardFallback)
	t.Run("ForwardUDP", f.testForwardUDP)
	t.Run("Ping", f.testPing)
	t.Run("Speedtest", f.testSpeedtest)
}

func (f *fixture) testExec(t *testing.T) {
	c := f.ssh(t)
	var out, errOut bytes.Buffer
	st, err := tunnel.RunSession(t.Context(), c, tunnel.SessionOptions{
		Command: tunnel.ShellQuote([]string{"sh", "-c", "echo hi; echo oops >&2; echo $DEVMESH_TEST_AGENT $FOO; exit 3"}),
		Stdout:  &out, Stderr: &errOut,
		Env: map[string]string{"FOO": "bar"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Code != 3 || out.String() != "hi\n1 bar\n" || errOut.String() != "oops\n" {
		t.Fatalf("status %+v, stdout %q, stderr %q", st, out.String(), errOut.String())
	}
	// Killed by a signal: reported as such, status 255 like OpenSSH.
	st, err = tunnel.RunSession(t.Context(), c, tunnel.SessionOptions{Command: "kill -TERM $$"})
	if err != nil || st.Signal != "TERM" || st.Code != 255 {
		t.Fatalf("killed command: %+v, %v", st, err)
	}
}

// testCipher checks that devmesh ssh gets its preferred cipher (AES-GCM
// on a CPU with AES instructions) both ways.
func (f *fixture) testCipher(t *testing.T) {
	c := f.ssh(t)
	m, ok := c.Conn.(ssh.AlgorithmsConnMetadata)
	if !ok {
		t.Fatalf("%T does not report its algorithms", c.Conn)
	}
	algs, want := m.Algorithms(), tunnel.Ciphers()[0]
	if algs.Read.Cipher != want || algs.Write.Cipher != want {
		t.Errorf("negotiated %s (read) and %s (write), want %s", algs.Read.Cipher, algs.Write.Cipher, want)
	}
}

func (f *fixture) testStdin(t *testing.T) {
	c := f.ssh(t)
	in := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	var out bytes.Buffer
	st, err := tunnel.RunSession(t.Context(), c, tunnel.SessionOptions{Command: "sha256sum", Stdin: bytes.NewReader(in), Stdout: &out})
	if err != nil || st.Code != 0 {
		t.Fatalf("%+v, %v", st, err)
	}
	sum := exec.Command("sha256sum")
	sum.Stdin = bytes.NewReader(in)
	want, _ := sum.Output()
	if out.String() != string(want) {
		t.Fatalf("remote sha256sum %q, want %q", out.String(), want)
	}
}

func (f *fixture) testPTY(t *testing.T) {
	c := f.ssh(t)
	resize := make(chan tunnel.WindowSize)
	stdin, stdinW := io.Pipe()
	defer stdinW.Close()
	stdout, stdoutW := io.Pipe()
	done := make(chan error, 1)
	var st tunnel.ExitStatus
	go func() {
		var err error
		st, err = tunnel.RunSession(t.Context(), c, tunnel.SessionOptions{
			Command: `test -t 0 && echo "tty $TERM $(stty size)"; read x; echo "size $(stty size)"`,
			Stdin:   stdin, Stdout: stdoutW,
			PTY: &tunnel.PTY{Term: "xterm-test", Width: 101, Height: 33, Resize: resize},
		})
		stdoutW.Close()
		done <- err
	}()
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "tty xterm-test 33 101" {
		t.Fatalf("first line %q, %v", line, err)
	}
	resize <- tunnel.WindowSize{Width: 120, Height: 40}
	time.Sleep(300 * time.Millisecond) // the resize request precedes the input
	io.WriteString(stdinW, "go\n")
	rest, _ := io.ReadAll(r)
	if err := <-done; err != nil || st.Code != 0 {
		t.Fatalf("%+v, %v", st, err)
	}
	if !strings.Contains(string(rest), "size 40 120") {
		t.Fatalf("after resize: %q", rest)
	}
}

func (f *fixture) testSignal(t *testing.T) {
	c := f.ssh(t)
	sigs := make(chan ssh.Signal, 1)
	stdout, stdoutW := io.Pipe()
	done := make(chan error, 1)
	var st tunnel.ExitStatus
	go func() {
		var err error
		st, err = tunnel.RunSession(t.Context(), c, tunnel.SessionOptions{
			Command: `trap 'echo got INT; exit 7' INT; echo ready; sleep 20 & wait`,
			Stdout:  stdoutW, Signals: sigs,
		})
		stdoutW.Close()
		done <- err
	}()
	r := bufio.NewReader(stdout)
	if line, _ := r.ReadString('\n'); line != "ready\n" {
		t.Fatalf("first line %q", line)
	}
	sigs <- ssh.SIGINT
	rest, _ := io.ReadAll(r)
	if err := <-done; err != nil || st.Code != 7 || string(rest) != "got INT\n" {
		t.Fatalf("after SIGINT: %+v, %v, output %q", st, err, rest)
	}
}

func (f *fixture) testHostKeyMismatch(t *testing.T) {
	ep := f.ep
	ep.HostKey = tunneltest.NewSigner(t).PublicKey()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := tunnel.DialSSH(ctx, f.laptop, ep, tunnel.SSHOptions{})
	if !errors.Is(err, tunnel.ErrHostKeyMismatch) {
		t.Fatalf("DialSSH with a wrong published key: %v", err)
	}
	if !strings.Contains(err.Error(), ssh.FingerprintSHA256(f.agent.Signer.PublicKey())) {
		t.Errorf("error does not show the presented key: %v", err)
	}
	ep.HostKey = nil
	if _, err := tunnel.DialSSH(ctx, f.laptop, ep, tunnel.SSHOptions{}); !errors.Is(err, tunnel.ErrUnavailable) {
		t.Fatalf("DialSSH without a published key: %v", err)
	}
}

// testOpenSSH runs the real OpenSSH client with the test binary as its
// ProxyCommand (a separate process with its own node).
func (f *fixture) testOpenSSH(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no OpenSSH client")
	}
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	sshCmd := func(knownKey ssh.PublicKey, remote string) *exec.Cmd {
		tunnel.WriteKnownHosts(kh, []tunnel.HostKey{{Alias: "devmesh.dev", Key: knownKey}})
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		t.Cleanup(cancel)
		cmd := exec.CommandContext(ctx, "ssh", "-F", "/dev/null",
			"-o", "ProxyCommand="+os.Args[0],
			"-o", "UserKnownHostsFile="+kh, "-o", "GlobalKnownHostsFile=/dev/null",
			"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
			"devmesh.dev", remote)
		cmd.Env = append(os.Environ(), envProxyControl+"="+f.c.URL(), envProxyKey+"="+f.proxyKey, envProxyAddr+"="+f.agent.Addr.String())
		return cmd
	}
	start := time.Now()
	var stderr bytes.Buffer
	cmd := sshCmd(f.agent.Signer.PublicKey(), "echo via openssh; exit 5")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 || string(out) != "via openssh\n" {
		t.Fatalf("ssh: %v, stdout %q, stderr:\n%s", err, out, stderr.String())
	}
	t.Logf("OpenSSH through the proxy helper (new node included): %v", time.Since(start).Round(time.Millisecond))

	stderr.Reset()
	cmd = sshCmd(tunneltest.NewSigner(t).PublicKey(), "echo should not run")
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	if err == nil || len(out) != 0 || !strings.Contains(stderr.String(), "Host key verification failed") {
		t.Fatalf("ssh with a wrong known key: %v, stdout %q, stderr:\n%s", err, out, stderr.String())
	}
}

func (f *fixture) testForwardTCP(t *testing.T) {
	ln, err := f.agent.Node.Listen("tcp", ":7000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c) // echo until EOF, then close
				c.Close()
			}()
		}
	}()
	spec, _ := tunnel.ParseForwardSpec("tcp", "0:7000")
	fw, err := tunnel.ListenForwards(tunnel.ForwardOptions{Specs: []tunnel.ForwardSpec{spec}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- fw.Run(ctx, f.laptop.Dial, f.agent.Addr) }()
	defer func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	local := fw.Addrs()[0].String()
	errs := make(chan error, 4)
	for i := range 4 {
		go func() { errs <- echoRoundTrip(local, bytes.Repeat([]byte{byte(i)}, 256<<10)) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// A second bind of the same address fails as a whole.
	spec2, _ := tunnel.ParseForwardSpec("tcp", fw.Addrs()[0].String()+":7000")
	udp, _ := tunnel.ParseForwardSpec("udp", "0:53")
	if _, err := tunnel.ListenForwards(tunnel.ForwardOptions{Specs: []tunnel.ForwardSpec{udp, spec2}}); err == nil {
		t.Fatal("listening on a busy port succeeded")
	}
}

// testForwardFallback forwards to a port the agent's tailnet address does
// not serve, which a server on the workspace's loopback does: reached
// through the agent's SSH server.
func (f *fixture) testForwardFallback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	spec, _ := tunnel.ParseForwardSpec("tcp", fmt.Sprintf("0:%d", port))
	fw, err := tunnel.ListenForwards(tunnel.ForwardOptions{Specs: []tunnel.ForwardSpec{spec}})
	if err != nil {
		t.Fatal(err)
	}
	d := &tunnel.FallbackDialer{Node: f.laptop, Endpoint: f.ep}
	defer d.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go fw.Run(ctx, d.Dial, f.agent.Addr)
	defer fw.Close()
	if err := echoRoundTrip(fw.Addrs()[0].String(), []byte("through ssh")); err != nil {
		t.Fatal(err)
	}
	// Without the fallback, the tailnet refuses.
	if _, err := f.laptop.Dial(ctx, "tcp", netip.AddrPortFrom(f.agent.Addr, uint16(port)).String()); !node.IsRefused(err) {
		t.Fatalf("plain tailnet dial to port %d: %v, want refused", port, err)
	}
}

// echoRoundTrip sends data to an echo server at addr, half-closes, and
// checks that the same bytes come back.
func echoRoundTrip(addr string, data []byte) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	go func() {
		c.Write(data)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("echo returned %d bytes, sent %d", len(got), len(data))
	}
	return nil
}

func (f *fixture) testForwardUDP(t *testing.T) {
	// The stand-in agent's relay reaches this host's loopback.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	defer pc.Close()
	sources := make(chan string, 100)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			sources <- from.String()
			pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	spec, _ := tunnel.ParseForwardSpec("udp", fmt.Sprintf("127.0.0.1:0:%d", port))
	fw, err := tunnel.ListenForwards(tunnel.ForwardOptions{Specs: []tunnel.ForwardSpec{spec}, UDPIdleTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go fw.Run(ctx, f.laptop.Dial, f.agent.Addr)
	defer fw.Close()

	local := net.UDPAddrFromAddrPort(fw.Addrs()[0])
	a, _ := net.DialUDP("udp", nil, local)
	b, _ := net.DialUDP("udp", nil, local)
	defer a.Close()
	defer b.Close()
	for i := range 3 {
		for name, c := range map[string]*net.UDPConn{"a": a, "b": b} {
			msg := fmt.Sprintf("%s%d", name, i)
			if got, err := udpExchange(c, msg); err != nil || got != "echo:"+msg {
				t.Fatalf("client %s: %q, %v", name, got, err)
			}
		}
	}
	// Two clients, two sessions (two source ports at the agent).
	seen := map[string]bool{}
	for len(sources) > 0 {
		seen[<-sources] = true
	}
	if len(seen) != 2 {
		t.Fatalf("the agent saw sources %v, want one per client", seen)
	}
	// After the idle timeout the session is gone; a new one starts.
	time.Sleep(time.Second)
	if got, err := udpExchange(a, "again"); err != nil || got != "echo:again" {
		t.Fatalf("after idle timeout: %q, %v", got, err)
	}
	if src := <-sources; seen[src] {
		t.Fatalf("after the idle timeout the old session (%s) was reused", src)
	}
}

// udpExchange sends msg and waits for one reply, retrying: UDP may drop
// the first datagrams while the path is set up.
func udpExchange(c *net.UDPConn, msg string) (string, error) {
	buf := make([]byte, 2048)
	var err error
	for range 10 {
		c.Write([]byte(msg))
		c.SetReadDeadline(time.Now().Add(time.Second))
		var n int
		if n, err = c.Read(buf); err == nil {
			return string(buf[:n]), nil
		}
	}
	return "", err
}

func (f *fixture) testPing(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var replies []tunnel.PingReply
	sum := tunnel.Ping(ctx, f.laptop, f.agent.Addr, tunnel.PingOptions{Interval: 200 * time.Millisecond}, func(r tunnel.PingReply) {
		replies = append(replies, r)
		t.Logf("ping %d: %v via %s %s", r.Seq, r.Latency, r.Path(), r.Err)
	})
	if !sum.Direct || sum.DirectAfter <= 0 || sum.Received == 0 {
		t.Fatalf("no direct path on loopback: %+v", sum)
	}
	last := replies[len(replies)-1]
	if !last.Direct || !strings.HasPrefix(last.Path(), "direct ") || last.Latency <= 0 {
		t.Fatalf("last reply %+v", last)
	}
	t.Logf("direct after %v", sum.DirectAfter)
	// With a count, exactly that many.
	sum = tunnel.Ping(ctx, f.laptop, f.agent.Addr, tunnel.PingOptions{Count: 2, Interval: 50 * time.Millisecond}, func(tunnel.PingReply) {})
	if sum.Sent != 2 || sum.Received != 2 || sum.Min <= 0 || sum.Max < sum.Min {
		t.Fatalf("ping -c 2: %+v", sum)
	}
}

func (f *fixture) testSpeedtest(t *testing.T) {
	for _, dir := range []byte{tunnel.Download, tunnel.Upload} {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		conn, err := f.laptop.Dial(ctx, "tcp", netip.AddrPortFrom(f.agent.Addr, tunnel.SpeedtestPort).String())
		if err != nil {
			t.Fatal(err)
		}
		var ticks int
		res, err := tunnel.RunSpeedtest(ctx, conn, dir, 1500*time.Millisecond, func(tunnel.SpeedInterval) { ticks++ })
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, iv := range res.Intervals {
			sum += iv.Bytes
		}
		// One tick a second and a last partial interval if it lasted a
		// tenth of a second. A test normally ends at its duration, but on
		// a loaded machine it may run over: an upload ends once the agent
		// has received all that the client wrote (its TCP buffer holds
		// megabytes), and a starved process sees its deadline late.
		wantTicks := ticks >= 1 && (len(res.Intervals) == ticks || len(res.Intervals) == ticks+1)
		if res.Bytes <= 0 || res.Mbps() <= 0 || !wantTicks {
			t.Fatalf("%s: %+v (%d ticks)", res.Direction, res, ticks)
		}
		if dir == tunnel.Download && sum != res.Bytes {
			t.Fatalf("download intervals sum to %d, total %d", sum, res.Bytes)
		}
		t.Logf("speedtest %s on loopback: %.0f Mbit/s (%d bytes in %v)", res.Direction, res.Mbps(), res.Bytes, res.Duration.Round(time.Millisecond))
	}
}
