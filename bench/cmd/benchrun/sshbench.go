package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/devmesh/devmesh/tunnel"
)

// sshd is a temporary OpenSSH server on loopback: the baseline for the
// SSH rows, with the same client and the same remote shell as devmesh's.
type sshd struct {
	cmd  *exec.Cmd
	port string
	key  string // the client's private key
	done chan struct{}
}

// startSSHD starts /usr/sbin/sshd on a spare port with a temporary
// configuration, installing openssh-server first if it is missing (root).
func startSSHD(dir string) (*sshd, error) {
	bin := "/usr/sbin/sshd"
	if _, err := os.Stat(bin); err != nil {
		fmt.Fprintln(os.Stderr, "bench: installing openssh-server for the OpenSSH baseline")
		for _, args := range [][]string{{"update", "-q"}, {"install", "-y", "-q", "openssh-server"}} {
			c := exec.Command("apt-get", args...)
			c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			if out, err := c.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("apt-get %s: %v: %s", args[0], err, lastLines(out))
			}
		}
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		return nil, fmt.Errorf("no OpenSSH client (ssh) on PATH")
	}
	d := filepath.Join(dir, "sshd")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, err
	}
	os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	hostKey, clientKey := filepath.Join(d, "host_ed25519"), filepath.Join(d, "client_ed25519")
	for _, k := range []string{hostKey, clientKey} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		return nil, err
	}
	auth := filepath.Join(d, "authorized_keys")
	if err := os.WriteFile(auth, pub, 0o600); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(d, "sshd_config")
	if err := os.WriteFile(conf, []byte(strings.Join([]string{
		"Port " + port, "ListenAddress 127.0.0.1", "HostKey " + hostKey, "AuthorizedKeysFile " + auth,
		"PidFile " + filepath.Join(d, "sshd.pid"), "StrictModes no", "UsePAM no", "PasswordAuthentication no",
		"KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password", "",
	}, "\n")), 0o600); err != nil {
		return nil, err
	}
	s := &sshd{port: port, key: clientKey, done: make(chan struct{})}
	s.cmd = exec.Command(bin, "-D", "-e", "-f", conf)
	logf, _ := os.Create(filepath.Join(d, "sshd.log"))
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	go func() { s.cmd.Wait(); logf.Close(); close(s.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := exec.Command("ssh", s.args("true")...).Run(); err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("sshd did not accept a login in 10s (log %s)", logf.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clientOpts are the OpenSSH client options both baselines and the
// ProxyCommand row share.
func clientOpts(key string) []string {
	return []string{"-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"}
}

func (s *sshd) args(remote ...string) []string {
	a := append(clientOpts(s.key), "-p", s.port, "127.0.0.1")
	return append(a, remote...)
}

func (s *sshd) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

func lastLines(b []byte) string {
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(l) > 3 {
		l = l[len(l)-3:]
	}
	return strings.Join(l, " / ")
}

// timed runs a command n times and returns the median wall time.
func timed(n int, mk func() *exec.Cmd) (time.Duration, error) {
	var ds []time.Duration
	for i := 0; i < n; i++ {
		c := mk()
		t0 := time.Now()
		if out, err := c.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("%s: %v: %s", c.Path, err, lastLines(out))
		}
		ds = append(ds, time.Since(t0))
	}
	sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
	return ds[len(ds)/2], nil
}

// bulk moves size bytes through the command (down: it writes them to
// stdout; up: it reads them from stdin) and returns MB/s (10^6 bytes).
func bulk(c *exec.Cmd, size int64, up bool) (float64, error) {
	var errb strings.Builder
	c.Stderr = &errb
	t0 := time.Now()
	if up {
		c.Stdin = io.LimitReader(zeros{}, size)
		if err := c.Run(); err != nil {
			return 0, fmt.Errorf("%v: %s", err, errb.String())
		}
	} else {
		out, err := c.StdoutPipe()
		if err != nil {
			return 0, err
		}
		if err := c.Start(); err != nil {
			return 0, err
		}
		n, _ := io.Copy(io.Discard, out)
		if err := c.Wait(); err != nil {
			return 0, fmt.Errorf("%v: %s", err, errb.String())
		}
		if n != size {
			return 0, fmt.Errorf("got %d bytes, want %d", n, size)
		}
	}
	return float64(size) / 1e6 / time.Since(t0).Seconds(), nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// benchSSH measures devmesh ssh (and OpenSSH through the config-ssh
// ProxyCommand) against OpenSSH's sshd on loopback.
func benchSSH(ctx context.Context, o options, r *report, w *workspace, dir string) error {
	sd, err := startSSHD(dir)
	if err != nil {
		return err
	}
	defer sd.stop()
	size, runs := int64(256<<20), 5
	if o.short {
		size, runs = 32<<20, 3
	}
	sz := strconv.FormatInt(size, 10)
	// The ProxyCommand rows use the options of config-ssh's block that
	// bear on speed (its cipher order); the baseline keeps OpenSSH's.
	proxy := append(clientOpts(sd.key), "-o", "Ciphers="+strings.Join(tunnel.Ciphers(), ","),
		"-o", "ProxyCommand="+w.bin+" ssh --stdio box", "devmesh-box")
	dm := func(remote ...string) *exec.Cmd {
		return w.command(ctx, append([]string{"ssh", "box", "--"}, remote...)...)
	}
	px := func(remote ...string) *exec.Cmd {
		c := exec.CommandContext(ctx, "ssh", append(append([]string{}, proxy...), remote...)...)
		c.Env = w.env
		return c
	}
	op := func(remote ...string) *exec.Cmd { return exec.CommandContext(ctx, "ssh", sd.args(remote...)...) }

	base, err := timed(runs*2, func() *exec.Cmd { return op("true") })
	if err != nil {
		return fmt.Errorf("openssh: %w", err)
	}
	cold, err := timed(runs*2, func() *exec.Cmd { return dm("true") })
	if err != nil {
		return err
	}
	r.add(figure{Name: "ssh: `devmesh ssh WS -- true`, cold (no daemon)", Value: ms(cold), Baseline: ms(base),
		Against: "OpenSSH `ssh 127.0.0.1 true`, same user and shell", Unit: "ms", Better: "lower",
		Note: fmt.Sprintf("median of %d; goal: <= baseline + 200 ms", runs*2)})

	type row struct {
		name string
		cmd  func(...string) *exec.Cmd
		up   bool
	}
	for _, rw := range []row{
		{"ssh: bulk download, devmesh ssh", dm, false},
		{"ssh: bulk upload, devmesh ssh", dm, true},
		{"ssh: bulk download, OpenSSH via ProxyCommand", px, false},
		{"ssh: bulk upload, OpenSSH via ProxyCommand", px, true},
	} {
		var remote, baseRemote []string
		if rw.up {
			remote, baseRemote = []string{"sh", "-c", "cat >/dev/null"}, []string{"cat >/dev/null"}
		} else {
			remote, baseRemote = []string{"head", "-c", sz, "/dev/zero"}, []string{"head -c " + sz + " /dev/zero"}
		}
		b, err := bulk(op(baseRemote...), size, rw.up)
		if err != nil {
			return fmt.Errorf("openssh bulk: %w", err)
		}
		v, err := bulk(rw.cmd(remote...), size, rw.up)
		if err != nil {
			r.fail(rw.name, err)
			continue
		}
		r.add(figure{Name: rw.name, Value: v, Baseline: b, Against: "OpenSSH sshd on loopback, same client",
			Unit: "MB/s", Better: "higher", N: int(size >> 20), Note: "N is MiB moved; goal >= 0.8x"})
	}
	return nil
}
