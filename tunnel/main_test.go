package tunnel_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/devmesh/devmesh/internal/leakcheck"
	"github.com/devmesh/devmesh/node"
	"github.com/devmesh/devmesh/tunnel"
)

// Environment of the ProxyCommand helper: the test binary run by OpenSSH
// as `ProxyCommand`, which joins the tailnet as its own node and bridges
// stdio to the agent's SSH port, as `devmesh ssh --stdio` does.
const (
	envProxyControl = "DEVMESH_TUNNEL_TEST_PROXY_CONTROL"
	envProxyKey     = "DEVMESH_TUNNEL_TEST_PROXY_AUTHKEY"
	envProxyAddr    = "DEVMESH_TUNNEL_TEST_PROXY_ADDR"
)

func TestMain(m *testing.M) {
	if os.Getenv(envProxyControl) != "" {
		if err := proxyMain(); err != nil {
			fmt.Fprintln(os.Stderr, "proxy helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	leakcheck.Main(m) // fails the tests if they leave goroutines behind
}

func proxyMain() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.Start(ctx, node.Options{
		ControlURL: os.Getenv(envProxyControl),
		AuthKey:    os.Getenv(envProxyKey),
		Hostname:   "proxy-helper",
	})
	if err != nil {
		return err
	}
	defer tunnel.Leave(n)
	addr := netip.MustParseAddr(os.Getenv(envProxyAddr))
	conn, err := tunnel.Dial(ctx, n, "tcp", addr, tunnel.SSHPort)
	if err != nil {
		return err
	}
	return tunnel.Proxy(context.Background(), conn, os.Stdin, os.Stdout)
}
