//go:build linux

package netlab

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// The environment that makes the test binary, started again by
// StartProxy, serve the proxy instead of running tests.
const (
	envProxyListen   = "NETLAB_PROXY_LISTEN"
	envProxyUpstream = "NETLAB_PROXY_UPSTREAM"
	envProxyCert     = "NETLAB_PROXY_CERT"
	envProxyKey      = "NETLAB_PROXY_KEY"
)

// proxyUpgrades are the connection upgrades the proxy passes on:
// WebSocket, as most reverse proxies are configured to, and the
// Tailscale control protocol's, which a control plane cannot do without.
// Every other upgrade, DERP's among them, is stripped, and the upstream
// sees a plain request.
var proxyUpgrades = map[string]bool{"websocket": true, "tailscale-control-protocol": true}

// Proxy is a TLS reverse proxy in front of a coordinator that does not
// pass `Upgrade: DERP`.
type Proxy struct {
	Proc *Proc
	URL  string // https://ADDR:443
}

// StartProxy runs the reverse proxy on h (port 443, a certificate from
// the lab's CA) forwarding to upstream, an https URL. It runs this test
// binary again (Main serves the proxy when its environment says so).
func StartProxy(t testing.TB, h *Host, upstream string) *Proxy {
	t.Helper()
	cert, key := h.lab.certFor(h.Addr)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	listen := h.Addr.String() + ":443"
	env := []string{envProxyListen + "=" + listen, envProxyUpstream + "=" + upstream, envProxyCert + "=" + cert, envProxyKey + "=" + key}
	p := h.Start(t.TempDir(), "proxy", env, exe)
	if err := p.WaitLog("proxy listening", 30*time.Second); err != nil {
		t.Fatalf("netlab proxy: %v\n%s", err, p.Output())
	}
	return &Proxy{Proc: p, URL: "https://" + listen}
}

// serveProxyFromEnv serves the proxy and exits when the environment asks
// for it; it returns at once otherwise.
func serveProxyFromEnv() {
	listen := os.Getenv(envProxyListen)
	if listen == "" {
		return
	}
	err := serveProxy(listen, os.Getenv(envProxyUpstream), os.Getenv(envProxyCert), os.Getenv(envProxyKey))
	fmt.Fprintln(os.Stderr, "proxy:", err)
	os.Exit(1)
}

func serveProxy(listen, upstream, certFile, keyFile string) error {
	u, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host
			switch up := strings.ToLower(r.In.Header.Get("Upgrade")); {
			case up == "":
			case proxyUpgrades[up]:
				fmt.Fprintf(os.Stderr, "proxy: passed Upgrade: %s for %s %s\n", up, r.In.Method, r.In.URL.Path)
			default:
				fmt.Fprintf(os.Stderr, "proxy: stripped Upgrade: %s from %s %s\n", up, r.In.Method, r.In.URL.Path)
				r.Out.Header.Del("Upgrade")
				r.Out.Header.Del("Connection")
			}
		},
		FlushInterval: -1,
	}
	srv := &http.Server{
		Addr:              listen,
		Handler:           rp,
		ReadHeaderTimeout: 10 * time.Second,
		// HTTP/1.1 only, as a proxy that upgrades connections.
		TLSConfig:    &tls.Config{NextProtos: []string{"http/1.1"}},
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "proxy listening on", listen, "for", upstream)
	return srv.ServeTLS(ln, certFile, keyFile)
}
