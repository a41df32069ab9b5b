package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/node"
	"github.com/devmesh/devmesh/tunnel"
)

type netcheckOptions struct {
	tunnelFlags
	output string
}

func newNetcheckCmd() *cobra.Command {
	var o netcheckOptions
	cmd := &cobra.Command{
		Use:   "netcheck",
		Short: "Check this network for direct tailnet paths: UDP, public address, NAT type, relay latency",
		Long: `Probe this network against the coordinator's relays and STUN servers:
whether UDP gets out, this machine's public address(es), whether the NAT
gives each destination its own public port (a "hard" NAT, which hinders
direct paths), and the latency to each relay region.

Run it on both ends when devmesh ping shows a path that stays relayed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runNetcheck(cmd, o) },
	}
	o.tunnelFlags.add(cmd, false)
	addOutputFlag(cmd, &o.output)
	return cmd
}

func runNetcheck(cmd *cobra.Command, o netcheckOptions) error {
	if err := checkOutput(o.output); err != nil {
		return err
	}
	api, creds, err := newAPIClient()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	stderr := cmd.ErrOrStderr()
	prog := newProgress(stderr, o.verbose)
	defer prog.stop()
	var r *node.NetReport
	if dc, why := daemonFor(ctx, creds, o.tunnelFlags); dc != nil {
		defer dc.Close()
		prog.note(fmt.Sprintf("Using the devmesh daemon (%s)", dc.SocketPath()))
		prog.step("Probing the network (from the daemon)")
		if r, err = dc.Netcheck(ctx); err != nil {
			return err
		}
	} else {
		prog.note(fmt.Sprintf("Not using the daemon (%s): starting an in-process node", why))
		if r, err = netcheckInProcess(ctx, api, prog, o.logger(stderr)); err != nil {
			return err
		}
	}
	prog.done("Done")
	if o.output == outputJSON {
		return writeJSONOutput(cmd.OutOrStdout(), r)
	}
	return printNetReport(cmd.OutOrStdout(), r)
}

// netcheckInProcess joins briefly for the relay map (it comes with a
// node's netmap), then probes.
func netcheckInProcess(ctx context.Context, api *client.Client, prog *progress, log *slog.Logger) (*node.NetReport, error) {
	prog.step("Getting the relay map from the coordinator")
	n, err := tunnel.Join(ctx, api, tunnel.JoinOptions{Logger: log})
	if err != nil {
		return nil, err
	}
	dm, err := n.DERPMap(ctx)
	tunnel.Leave(n)
	if err != nil {
		return nil, fmt.Errorf("get the relay map: %w", err)
	}
	prog.step("Probing the network")
	return node.Netcheck(ctx, dm, log)
}

func printNetReport(w io.Writer, r *node.NetReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "UDP:\t%s\n", yesNo(r.UDP, "yes", "no (blocked? direct paths need outbound UDP)"))
	var eps []string
	for _, e := range r.Endpoints {
		eps = append(eps, e.String())
	}
	fmt.Fprintf(tw, "Public address:\t%s\n", orDash(strings.Join(eps, ", ")))
	fmt.Fprintf(tw, "IPv4 / IPv6:\t%s / %s\n", yesNo(r.IPv4, "yes", "no"), yesNo(r.IPv6, "yes", "no"))
	mapping := fmt.Sprintf("unknown (telling needs STUN on two or more ports or addresses; this coordinator has %d)", r.STUNServers)
	hint := ""
	switch m := r.MappingVariesByDestIP; {
	case !r.UDP:
		mapping = "unknown (no UDP)"
	case m != nil && *m:
		mapping = "hard: the public port varies by destination"
		hint = "Direct paths need a peer that accepts UDP from any port (a public address, a full-cone NAT, a port forward); with another hard NAT, or a firewall that admits only the exact ip:port it sent to, traffic is relayed through DERP."
	case m != nil:
		mapping = "easy: one public port for every destination"
		hint = "Direct paths work with peers behind easy NATs; a peer behind a hard NAT goes direct only if this firewall accepts UDP from any port."
	}
	fmt.Fprintf(tw, "NAT mapping:\t%s\n", mapping)
	if r.CaptivePortal {
		fmt.Fprintf(tw, "Captive portal:\tyes (log in to this network first)\n")
	}
	preferred := "none answered"
	for _, reg := range r.Regions {
		if reg.ID == r.PreferredRegion {
			preferred = fmt.Sprintf("%s (%s)", reg.Code, reg.Name)
		}
	}
	fmt.Fprintf(tw, "Nearest relay:\t%s\n", preferred)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "Relay latency:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, reg := range r.Regions {
		lat := "no answer"
		if reg.Latency > 0 {
			lat = fmtLatency(reg.Latency)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", reg.Code, lat, reg.Name)
	}
	if !r.UDP {
		hint = "Without UDP, every connection is relayed through DERP (over TLS): allow outbound UDP for direct paths."
	}
	if hint != "" {
		defer fmt.Fprintln(w, "Hint: "+hint)
	}
	return tw.Flush()
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}
