package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// controlProxy carries tsnet's control connection over a TLS
// configuration of our choosing. tsnet verifies the control server's
// certificate against the system's roots only (tsnet offers no hook for
// tsd.System.ExtraRootCAs), so it cannot reach a coordinator that serves
// its self-signed certificate, pinned by fingerprint. Instead tsnet is
// pointed at this loopback listener over plain HTTP (a private host: it
// then never tries TLS itself), and each connection is forwarded byte for
// byte over TLS with the pinned configuration. The Noise protocol inside
// is end to end between tsnet and the coordinator, as without the proxy.
type controlProxy struct {
	ln     net.Listener
	target string // host:port of the coordinator
	tls    *tls.Config

	mu     sync.Mutex // guards conns
	conns  map[net.Conn]bool
	closed bool
	wg     sync.WaitGroup
}

// proxyPortFile keeps the proxy's port in a persistent node's state
// directory: the control URL is part of the node's saved profile, so a
// restart tries to keep it.
const proxyPortFile = "control-proxy-port"

// startControlProxy listens on loopback and starts forwarding to the
// https controlURL with cfg. It returns the http URL for tsnet.
func startControlProxy(controlURL string, cfg *tls.Config, stateDir string) (*controlProxy, string, error) {
	u, err := url.Parse(controlURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, "", fmt.Errorf("node: a control TLS configuration needs an https ControlURL, not %q", controlURL)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	ln, err := listenProxy(stateDir)
	if err != nil {
		return nil, "", fmt.Errorf("node: control proxy: %w", err)
	}
	p := &controlProxy{ln: ln, target: net.JoinHostPort(u.Hostname(), port), tls: cfg, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	local := &url.URL{Scheme: "http", Host: ln.Addr().String(), Path: u.Path}
	return p, strings.TrimRight(local.String(), "/"), nil
}

// listenProxy binds 127.0.0.1, on the port saved in stateDir if it is
// free, and saves the port it got.
func listenProxy(stateDir string) (net.Listener, error) {
	file := ""
	if stateDir != "" {
		file = filepath.Join(stateDir, proxyPortFile)
		if b, err := os.ReadFile(file); err == nil {
			if port, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && port > 0 && port < 65536 {
				if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
					return ln, nil
				}
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if file != "" {
		port := ln.Addr().(*net.TCPAddr).Port
		if err := os.WriteFile(file, []byte(strconv.Itoa(port)+"\n"), 0o600); err != nil {
			ln.Close()
			return nil, err
		}
	}
	return ln, nil
}

func (p *controlProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // a temporary error
			continue
		}
		if !p.track(c, true) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// track adds or removes c from the open connections; adding fails once
// the proxy is closed.
func (p *controlProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.closed {
			return false
		}
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *controlProxy) forward(c net.Conn) {
	defer p.wg.Done()
	defer p.track(c, false)
	defer c.Close()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 15 * time.Second}, Config: p.tls}
	up, err := d.Dial("tcp", p.target)
	if err != nil {
		return // tsnet sees the connection close and retries
	}
	if !p.track(up, true) {
		up.Close()
		return
	}
	defer p.track(up, false)
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done // one side ended: close both, which ends the other copy
	c.Close()
	up.Close()
	<-done
}

// Close stops listening, closes every forwarded connection and waits for
// the goroutines.
func (p *controlProxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}
