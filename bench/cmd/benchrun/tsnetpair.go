package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"tailscale.com/derp/derpserver"
	"tailscale.com/envknob"
	"tailscale.com/ipn/store/mem"
	"tailscale.com/logtail"
	"tailscale.com/net/stunserver"
	"tailscale.com/tailcfg"
	"tailscale.com/tsnet"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/key"

	"github.com/devmesh/devmesh/tunnel"
)

// The speedtest baseline: a pair of plain tsnet nodes on tailscale's test
// control server, one in this process (the client, like the devmesh CLI)
// and one in a child process (the server, like the devmesh agent), running
// devmesh's speedtest protocol between them. It is the ceiling the devmesh
// speedtest can reach on this machine: the same data plane without our
// coordinator, agent or CLI.

// startTSNet starts an in-memory tsnet node against controlURL and waits
// for its netmap (as node.Start does). stop closes it and removes its
// directory.
func startTSNet(ctx context.Context, controlURL, hostname string) (s *tsnet.Server, ip netip.Addr, stop func(), err error) {
	noTelemetry()
	dir, err := os.MkdirTemp("", "devmesh-bench-tsnet-")
	if err != nil {
		return nil, netip.Addr{}, nil, err
	}
	s = &tsnet.Server{ControlURL: controlURL, Hostname: hostname, Dir: dir, Store: new(mem.Store),
		Ephemeral: true, Logf: func(string, ...any) {}, UserLogf: func(string, ...any) {}}
	stop = func() { s.Close(); os.RemoveAll(dir) }
	lc, err := s.LocalClient()
	if err != nil {
		stop()
		return nil, netip.Addr{}, nil, err
	}
	for {
		st, err := lc.StatusWithoutPeers(ctx)
		if err == nil && len(st.TailscaleIPs) > 0 {
			return s, st.TailscaleIPs[0], stop, nil
		}
		select {
		case <-ctx.Done():
			stop()
			return nil, netip.Addr{}, nil, fmt.Errorf("tsnet node %s did not get a netmap: %w", hostname, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// noTelemetry keeps tsnet from uploading logs to Tailscale's log service,
// as node.Start does.
var noTelemetry = sync.OnceFunc(func() {
	envknob.SetNoLogsNoSupport()
	logtail.Disable()
})

// serveTSNetPeer is the child side ("tsnetpeer URL"): a tsnet node serving
// the speedtest protocol on SpeedtestPort; it prints its address, then
// serves until stdin closes.
func serveTSNetPeer(controlURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	s, ip, stop, err := startTSNet(ctx, controlURL, "tsnet-server")
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer stop()
	ln, err := s.Listen("tcp", fmt.Sprintf(":%d", tunnel.SpeedtestPort))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveSpeedConn(c)
		}
	}()
	fmt.Println(ip)
	io.Copy(io.Discard, os.Stdin) // the parent closes it to stop us
	ln.Close()
}

// serveSpeedConn is the agent's side of the speedtest protocol (see
// tunnel.SpeedtestPort), in its simplest form.
func serveSpeedConn(c net.Conn) {
	defer c.Close()
	var hdr [9]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	d := time.Duration(binary.BigEndian.Uint64(hdr[1:])) * time.Millisecond
	switch hdr[0] {
	case tunnel.Download:
		buf := make([]byte, 64<<10)
		c.SetWriteDeadline(time.Now().Add(d))
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	case tunnel.Upload:
		n, _ := io.Copy(io.Discard, c)
		var out [8]byte
		binary.BigEndian.PutUint64(out[:], uint64(n))
		c.Write(out[:])
	}
}

// refRelay is a DERP relay and STUN server on loopback for the tsnet
// pair, described in derpMap: with no DERP map at all tsnet would fall
// back to Tailscale's own relays.
type refRelay struct {
	derp    *derpserver.Server
	http    *httptest.Server
	stun    *stunserver.STUNServer
	cancel  context.CancelFunc
	derpMap *tailcfg.DERPMap
}

func startRefRelay() (*refRelay, error) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &refRelay{cancel: cancel, derp: derpserver.New(key.NewNode(), func(string, ...any) {})}
	r.http = httptest.NewUnstartedServer(derpserver.Handler(r.derp))
	r.http.Config.ErrorLog = log.New(io.Discard, "", 0)
	r.http.StartTLS()
	r.stun = stunserver.New(ctx)
	if err := r.stun.Listen("127.0.0.1:0"); err != nil {
		r.close()
		return nil, err
	}
	go r.stun.Serve()
	r.derpMap = &tailcfg.DERPMap{OmitDefaultRegions: true, Regions: map[int]*tailcfg.DERPRegion{
		1: {RegionID: 1, RegionCode: "bench", Nodes: []*tailcfg.DERPNode{{
			Name: "1a", RegionID: 1, HostName: "127.0.0.1", IPv4: "127.0.0.1", IPv6: "none",
			STUNPort: r.stun.LocalAddr().(*net.UDPAddr).Port, DERPPort: r.http.Listener.Addr().(*net.TCPAddr).Port,
			InsecureForTests: true,
		}}},
	}}
	return r, nil
}

func (r *refRelay) close() {
	r.cancel() // stops STUN
	r.http.CloseClientConnections()
	r.http.Close()
	r.derp.Close()
}

// tsnetPair measures the speedtest both ways between two plain tsnet
// nodes and returns Mbit/s for download and upload. The control server
// and relay run in this process; they are idle during the transfers.
func tsnetPair(ctx context.Context, d time.Duration) (down, up float64, err error) {
	relay, err := startRefRelay()
	if err != nil {
		return 0, 0, err
	}
	defer relay.close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	url := "http://" + ln.Addr().String()
	ctl := &testcontrol.Server{Logf: func(string, ...any) {}, DERPMap: relay.derpMap, AllNodesSameUser: true, ExplicitBaseURL: url}
	hs := &http.Server{Handler: ctl, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	ref := &server{url: url}
	self, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	child := exec.Command(self, "tsnetpeer", ref.url)
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		return 0, 0, err
	}
	out, err := child.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	if err := child.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		stdin.Close()
		child.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return 0, 0, fmt.Errorf("tsnet server node: %w", err)
	}
	peer, err := netip.ParseAddr(strings.TrimSpace(line))
	if err != nil {
		return 0, 0, fmt.Errorf("tsnet server node: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	client, _, stopClient, err := startTSNet(sctx, ref.url, "tsnet-client")
	if err != nil {
		return 0, 0, err
	}
	defer stopClient()
	addr := netip.AddrPortFrom(peer, tunnel.SpeedtestPort).String()
	var res [2]float64
	for i, dir := range []byte{tunnel.Download, tunnel.Upload} {
		conn, err := dialRetry(sctx, client, addr)
		if err != nil {
			return 0, 0, err
		}
		r, err := tunnel.RunSpeedtest(ctx, conn, dir, d, nil)
		if err != nil {
			return 0, 0, fmt.Errorf("tsnet pair speedtest: %w", err)
		}
		res[i] = r.Mbps()
	}
	return res[0], res[1], nil
}

// dialRetry dials until it succeeds: the peer may not know this node yet
// (its first handshakes are then dropped).
func dialRetry(ctx context.Context, s *tsnet.Server, addr string) (net.Conn, error) {
	for {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := s.Dial(dctx, "tcp", addr)
		cancel()
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, errors.Join(err, ctx.Err())
		}
	}
}
