package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration/testcontrol"

	"github.com/devmesh/devmesh/bench/loadgen"
	"github.com/devmesh/devmesh/coordinator/client"
)

// server is a control server started for one measurement.
type server struct {
	url  string
	cmd  *exec.Cmd
	key  string // a reusable auth key ("" for the reference, which takes any)
	done chan struct{}
	// metrics is the coordinator's metrics listener ("" without one);
	// onSample, if set, is called at each load sample point.
	metrics  string
	onSample func(point string)
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startDevmesh starts `devmesh server` on a fresh data directory, creates
// the first user and a reusable auth key for the load.
// withMetrics also serves /metrics and pprof on a metrics listener.
func startDevmesh(ctx context.Context, bin, dir string, withMetrics bool) (*server, error) {
	return startDevmeshWith(ctx, bin, dir, withMetrics, "--disable-stun", "--disable-provisioning")
}

// startDevmeshWith is startDevmesh with other flags than the two it
// passes (the provisioning rows need terraform).
// serverEnv is added to the environment of every coordinator started
// (-server-env).
var serverEnv []string

func startDevmeshWith(ctx context.Context, bin, dir string, withMetrics bool, flags ...string) (*server, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	var extra []string
	metricsAddr := ""
	if withMetrics {
		if metricsAddr, err = freePort(); err != nil {
			return nil, err
		}
		extra = []string{"--metrics-listen", metricsAddr}
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	args := append([]string{"server", "--data-dir", filepath.Join(dir, "data"), "--listen", addr,
		"--log-level", "warn"}, flags...)
	cmd := exec.Command(bin, append(args, extra...)...)
	cmd.Env = append(os.Environ(), serverEnv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &server{url: "http://" + addr, cmd: cmd, done: make(chan struct{}), metrics: metricsAddr}
	go func() { cmd.Wait(); logf.Close(); close(s.done) }()
	c, err := client.New(s.url, "")
	if err != nil {
		s.stop()
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err = c.BuildInfo(ctx); err == nil {
			break
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("devmesh server did not answer in 30s (log in %s): %w", logf.Name(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	sess, err := c.CreateFirstUser(ctx, client.LoginRequest{Username: "bench", Password: "bench-password-not-secret"})
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("first user: %w", err)
	}
	c, _ = client.New(s.url, sess.Token)
	k, err := c.CreateAuthKey(ctx, client.CreateAuthKeyRequest{Reusable: true, Expiry: "1h"})
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("auth key: %w", err)
	}
	s.key = k.Key
	return s, nil
}

// startRef starts tailscale's test control server in a child process (this
// binary, "refcontrol"), so that its CPU and memory are its own.
func startRef() (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "refcontrol")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	line, err := bufio.NewReader(out).ReadString('\n')
	go func() { cmd.Wait(); close(s.done) }()
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("reference control server: %w", err)
	}
	s.url = strings.TrimSpace(line)
	return s, nil
}

// serveRefControl is the child side of startRef.
func serveRefControl() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	url := "http://" + ln.Addr().String()
	ctl := &testcontrol.Server{
		Logf:             func(string, ...any) {},
		DERPMap:          &tailcfg.DERPMap{}, // never the default (Tailscale-operated) map
		AllNodesSameUser: true,
		ExplicitBaseURL:  url,
	}
	fmt.Println(url)
	srv := &http.Server{Handler: ctl, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		ch := make(chan os.Signal, 1)
		signalNotify(ch)
		<-ch
		srv.Close()
	}()
	srv.Serve(ln)
}

type loadResult struct {
	loadgen.Result
	cpuPerReg, cpuPerChange time.Duration
	rss                     int64
	err                     error
}

func load(ctx context.Context, s *server, n, rounds int, timeout time.Duration) loadResult {
	stats := map[string]loadgen.ProcStat{}
	cfg := loadgen.Config{URL: s.url, AuthKey: s.key, Nodes: n, Concurrency: 64, Rounds: rounds,
		DeliveryTimeout: timeout,
		Sample: func(phase string) {
			if st, err := loadgen.ReadProcStat(s.cmd.Process.Pid); err == nil {
				stats[phase] = st
			}
			if s.onSample != nil {
				s.onSample(phase)
			}
		},
		Progress: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "  "+f+"\n", a...) },
	}
	res, err := loadgen.Run(ctx, cfg)
	lr := loadResult{Result: res, err: err}
	if res.Registered > 0 {
		lr.cpuPerReg = (stats["registered"].CPU - stats["idle"].CPU) / time.Duration(res.Registered)
	}
	if rounds > 0 {
		lr.cpuPerChange = (stats["fanout"].CPU - stats["meshed"].CPU) / time.Duration(rounds)
	}
	lr.rss = stats["fanout"].RSS
	return lr
}

// benchControl measures registration, fan-out and memory at N nodes on
// devmesh and, up to 1,000 nodes, on tailscale's test control server.
func benchControl(ctx context.Context, o options, r *report, n int) error {
	dir, err := os.MkdirTemp("", "devmesh-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rounds := 20
	if o.short {
		rounds = 5
	}
	fmt.Fprintf(os.Stderr, "control plane, N=%d: devmesh\n", n)
	dm, err := startDevmesh(ctx, o.devmesh, dir, o.profile != "")
	if err != nil {
		return err
	}
	var prof *profiler
	if o.profile != "" {
		if prof, err = startProfiler(dm.metrics, o.profile, fmt.Sprintf("devmesh-n%d", n)); err != nil {
			dm.stop()
			return err
		}
		dm.onSample = prof.sample
	}
	d := load(ctx, dm, n, rounds, 30*time.Second)
	if prof != nil {
		prof.stop()
	}
	dm.stop()
	if prof != nil {
		prof.finish(os.Stderr)
	}
	if d.err != nil {
		return fmt.Errorf("devmesh: %w", d.err)
	}
	var ref *loadResult
	if o.noRef {
		r.note(fmt.Sprintf("N=%d: reference skipped (-no-ref)", n))
	} else if n <= 1000 {
		fmt.Fprintf(os.Stderr, "control plane, N=%d: tailscale testcontrol (reference)\n", n)
		rs, err := startRef()
		if err != nil {
			return err
		}
		rr := load(ctx, rs, n, rounds, 10*time.Second)
		rs.stop()
		if rr.err != nil {
			r.note(fmt.Sprintf("reference at N=%d: %v", n, rr.err))
		} else {
			ref = &rr
		}
	}
	r.controlRows(n, d, ref)
	return nil
}
