package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/tunnel"
)

type portForwardOptions struct {
	tunnelFlags
	tcp, udp []string
}

func newPortForwardCmd() *cobra.Command {
	var o portForwardOptions
	cmd := &cobra.Command{
		Use:   "port-forward WS[.AGENT] --tcp LOCAL:REMOTE [--tcp ...] [--udp LOCAL:REMOTE ...]",
		Short: "Forward local TCP and UDP ports to a workspace",
		Long: `Listen on local ports and forward each connection (TCP) or each client's
datagrams (UDP) to a port of the workspace agent's tailnet address, until
interrupted.

A forward is LOCAL:REMOTE, listening on 127.0.0.1:LOCAL, or
ADDR:LOCAL:REMOTE to listen on another address ([::1]:8080:80,
0.0.0.0:8080:80). LOCAL 0 picks a free port.

Both reach services on the workspace's localhost (127.0.0.1:REMOTE). TCP
goes straight to that port of the agent's tailnet address, which the agent
connects to the workspace's localhost (an agent of an older devmesh is
reached through its SSH server instead, like ssh -L). UDP goes through the
agent's UDP relay (tailnet TCP port 4445): one stream per local client
address, each datagram framed, sent by the agent from its own socket to
127.0.0.1:REMOTE; a client quiet for 60s loses its flow. Only the
workspace owner's devices get through.

A connection to a port nothing listens on in the workspace is reported
on stderr; a local port in use is an error naming a free one.

  devmesh port-forward dev --tcp 8080:80 --tcp 15432:5432 --udp 5353:53`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runPortForward(cmd, args[0], o) },
	}
	o.tunnelFlags.add(cmd, true)
	cmd.Flags().StringArrayVar(&o.tcp, "tcp", nil, "forward TCP: [ADDR:]LOCAL:REMOTE (repeatable)")
	cmd.Flags().StringArrayVar(&o.udp, "udp", nil, "forward UDP: [ADDR:]LOCAL:REMOTE (repeatable)")
	cmd.RegisterFlagCompletionFunc("tcp", completeForwardPorts)
	return cmd
}

// parseForwards parses every spec; one bad spec fails them all.
func parseForwards(tcp, udp []string) ([]tunnel.ForwardSpec, error) {
	var specs []tunnel.ForwardSpec
	for _, group := range []struct {
		network string
		specs   []string
	}{{"tcp", tcp}, {"udp", udp}} {
		for _, s := range group.specs {
			spec, err := tunnel.ParseForwardSpec(group.network, s)
			if err != nil {
				return nil, err
			}
			specs = append(specs, spec)
		}
	}
	if len(specs) == 0 {
		return nil, errors.New("nothing to forward: give at least one --tcp or --udp LOCAL:REMOTE")
	}
	return specs, tunnel.CheckForwardSpecs(specs)
}

func runPortForward(cmd *cobra.Command, targetArg string, o portForwardOptions) error {
	specs, err := parseForwards(o.tcp, o.udp)
	if err != nil {
		return err
	}
	target, err := tunnel.ParseTarget(targetArg)
	if err != nil {
		return err
	}
	// Bind first: a busy port fails before anything else happens.
	fw, err := tunnel.ListenForwards(tunnel.ForwardOptions{Specs: specs, Logger: o.logger(cmd.ErrOrStderr()), Errors: cmd.ErrOrStderr()})
	if err != nil {
		return err
	}
	defer fw.Close()
	ctx := cmd.Context()
	tc, err := openTunnel(ctx, cmd.ErrOrStderr(), target, o.tunnelFlags, false)
	if err != nil {
		return err
	}
	defer tc.Close()
	tc.tailnet.WaitReachable(ctx, tc.ep.Addr)
	tc.prog.done("Connected")
	d := &tunnel.FallbackDialer{Node: tc.tailnet, Endpoint: tc.ep, Logger: o.logger(cmd.ErrOrStderr())}
	defer d.Close()
	for i, s := range specs {
		fmt.Fprintf(cmd.OutOrStdout(), "Forwarding %s %s -> %s:%d\n", s.Network, fw.Addrs()[i], tc.ep.Target, s.RemotePort)
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "Press Ctrl-C to stop.")
	return fw.Run(ctx, d.Dial, tc.ep.Addr)
}
