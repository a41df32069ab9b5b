package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/node"
	"github.com/devmesh/devmesh/tunnel/daemon"
	"github.com/devmesh/devmesh/tunnel/vpn"
)

func newVPNCmd() *cobra.Command {
	var socket string
	cmd := &cobra.Command{
		Use:   "vpn",
		Short: "Put the daemon's tailnet node on this host's network (TUN device, routes, MagicDNS)",
		Long: `VPN mode puts the running daemon's node on this host's network: a TUN device
(devmesh0) with the node's tailnet addresses, routes for the tailnet's ranges
only (100.64.0.0/10 and fd7a:115c:a1e0::/48, never a default route), and DNS
for the tailnet's domain only, answered by the node at 100.100.100.100. Any
program then reaches your workspaces: curl http://WS.devmesh.internal:8080/,
plain ssh to the agent's address, database clients.

The daemon must run as root or with CAP_NET_ADMIN (the system unit in
examples/systemd). Linux only. See docs/daemon.md.`,
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&socket, "socket", "", "the daemon's socket (default as for devmesh daemon)")
	client := func() (*daemon.Client, error) {
		if runtime.GOOS != "linux" {
			return nil, vpn.ErrUnsupported
		}
		_, path, err := daemonPaths("x", socket)
		if err != nil {
			return nil, err
		}
		return daemon.NewClient(path), nil
	}
	var upOut, downOut, statusOut string
	up := &cobra.Command{
		Use:   "up",
		Short: "Switch the daemon to VPN mode",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return vpnSwitch(cmd, client, upOut, (*daemon.Client).VPNUp)
		},
	}
	down := &cobra.Command{
		Use:   "down",
		Short: "Undo VPN mode: remove the device, routes and DNS settings it added",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return vpnSwitch(cmd, client, downOut, (*daemon.Client).VPNDown)
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show VPN mode and the reachable workspaces (address, path, latency, last handshake)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return vpnStatus(cmd, client, statusOut) },
	}
	addOutputFlag(up, &upOut)
	addOutputFlag(down, &downOut)
	addOutputFlag(status, &statusOut)
	cmd.AddCommand(up, down, status)
	return cmd
}

// vpnSwitch runs vpn up or down through the daemon.
func vpnSwitch(cmd *cobra.Command, client func() (*daemon.Client, error), output string,
	do func(*daemon.Client, context.Context) (daemon.VPNStatus, error)) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), 90*time.Second)
	defer cancel()
	st, err := do(c, ctx)
	if errors.Is(err, daemon.ErrNotRunning) {
		return fmt.Errorf("%w: VPN mode is a mode of the daemon; start it first (as root: sudo devmesh daemon, or the system unit in examples/systemd)", err)
	}
	if err != nil {
		return err
	}
	if output == outputJSON {
		return writeJSONOutput(cmd.OutOrStdout(), st)
	}
	printVPN(cmd.OutOrStdout(), st)
	return nil
}

func printVPN(w io.Writer, st daemon.VPNStatus) {
	if !st.Up {
		fmt.Fprintln(w, "VPN mode is off.")
		return
	}
	dns := "no MagicDNS (the coordinator sent no domain)"
	if st.Domain != "" {
		dns = fmt.Sprintf("*.%s resolved by %s (%s)", st.Domain, vpn.Resolver, st.DNS)
	}
	fmt.Fprintf(w, "VPN mode is on: device %s, routes %s and %s, DNS %s\n", st.Interface, vpn.Routes[0], vpn.Routes[1], dns)
}

// vpnPeer is one row of vpn status.
type vpnPeer struct {
	node.Peer
	// Path is "direct IP:PORT", "relay REGION" or "" (no answer);
	// LatencyMS the round trip of one disco ping.
	Path      string  `json:"path"`
	LatencyMS float64 `json:"latency_ms,omitempty"`
}

type vpnStatusOutput struct {
	VPN   daemon.VPNStatus `json:"vpn"`
	Peers []vpnPeer        `json:"peers"`
}

func vpnStatus(cmd *cobra.Command, client func() (*daemon.Client, error), output string) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	out := vpnStatusOutput{Peers: pingPeers(ctx, c, st.Peers)}
	if st.VPN != nil {
		out.VPN = *st.VPN
	}
	if output == outputJSON {
		return writeJSONOutput(cmd.OutOrStdout(), out)
	}
	w := cmd.OutOrStdout()
	printVPN(w, out.VPN)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tPATH\tLATENCY\tLAST HANDSHAKE")
	for _, p := range out.Peers {
		lat, hs, path := "-", "-", p.Path
		if p.LatencyMS > 0 {
			lat = fmt.Sprintf("%.1fms", p.LatencyMS)
		}
		if !p.LastHandshake.IsZero() {
			hs = time.Since(p.LastHandshake).Round(time.Second).String() + " ago"
		}
		if path == "" {
			path = yesNo(p.Online, "no answer", "offline")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.DNSName, p.Addrs[0], path, lat, hs)
	}
	return tw.Flush()
}

// pingPeers pings every online peer at once (one disco ping each, at
// most 2 s) for its path and latency.
func pingPeers(ctx context.Context, c *daemon.Client, peers []node.Peer) []vpnPeer {
	out := make([]vpnPeer, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		out[i].Peer = p
		if !p.Online {
			continue
		}
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			res, err := c.Ping(pctx, p.Addrs[0])
			if err != nil {
				return
			}
			out[i].LatencyMS = float64(res.Latency.Microseconds()) / 1000
			out[i].Path = "relay " + res.DERPRegionCode
			if res.Direct {
				out[i].Path = "direct " + res.Endpoint
			}
		})
	}
	wg.Wait()
	return out
}
