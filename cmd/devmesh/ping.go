package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/node"
	"github.com/devmesh/devmesh/tunnel"
)

type pingOptions struct {
	tunnelFlags
	count    int
	interval time.Duration
	timeout  time.Duration
	output   string
}

func newPingCmd() *cobra.Command {
	var o pingOptions
	cmd := &cobra.Command{
		Use:   "ping WS[.AGENT]",
		Short: "Ping a workspace over the tailnet and show the path (direct or relayed)",
		Long: `Send tailnet (disco) pings to a workspace agent and show, for each reply, the
latency and the path: direct to an ip:port, or relayed through a DERP
region. These pings are also what sets up a direct path, so the first
replies often come relayed.

Without -c, ping until the path is direct (at most 10 times). When it stays
relayed, devmesh checks this network (see devmesh netcheck) and says why
that may be.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runPing(cmd, args[0], o) },
	}
	o.tunnelFlags.add(cmd, true)
	cmd.Flags().IntVarP(&o.count, "count", "c", 0, "number of pings (default: until direct, at most 10)")
	cmd.Flags().DurationVarP(&o.interval, "interval", "i", time.Second, "time between pings")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 5*time.Second, "how long to wait for each reply")
	addOutputFlag(cmd, &o.output)
	return cmd
}

// pingReport is ping's -o json output.
type pingReport struct {
	Workspace string             `json:"workspace"`
	Agent     string             `json:"agent"`
	Address   string             `json:"address"`
	Replies   []tunnel.PingReply `json:"replies"`
	Summary   tunnel.PingSummary `json:"summary"`
	Hints     []string           `json:"hints,omitempty"`
}

func runPing(cmd *cobra.Command, targetArg string, o pingOptions) error {
	if err := checkOutput(o.output); err != nil {
		return err
	}
	if o.count < 0 || o.interval <= 0 || o.timeout <= 0 {
		return fmt.Errorf("--count must be 0 or more, --interval and --timeout positive")
	}
	target, err := tunnel.ParseTarget(targetArg)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	tc, err := openTunnel(ctx, cmd.ErrOrStderr(), target, o.tunnelFlags, false)
	if err != nil {
		return err
	}
	defer tc.Close()
	tc.prog.done("Joined the tailnet")
	out := cmd.OutOrStdout()
	rep := pingReport{Workspace: tc.ep.Target.Workspace, Agent: tc.ep.Target.Agent, Address: tc.ep.Addr.String()}
	rep.Summary = tunnel.Ping(ctx, tc.tailnet, tc.ep.Addr,
		tunnel.PingOptions{Count: o.count, Interval: o.interval, Timeout: o.timeout},
		func(r tunnel.PingReply) {
			rep.Replies = append(rep.Replies, r)
			if o.output != outputJSON {
				printPingReply(out, tc.ep, r)
			}
		})
	if rep.Summary.Received > 0 && !rep.Summary.Direct {
		rep.Hints = tunnel.RelayHints(tc.netcheck(ctx, o.logger(cmd.ErrOrStderr())))
	}
	if o.output == outputJSON {
		return writeJSONOutput(out, rep)
	}
	printPingSummary(out, rep)
	if rep.Summary.Received == 0 {
		return fmt.Errorf("no reply from %s", tc.ep.Target)
	}
	return nil
}

func printPingReply(w io.Writer, ep tunnel.Endpoint, r tunnel.PingReply) {
	if r.Err != "" {
		fmt.Fprintf(w, "%d: %s\n", r.Seq, r.Err)
		return
	}
	fmt.Fprintf(w, "pong from %s (%s) via %s in %s\n", ep.Target, ep.Addr, r.Path(), fmtLatency(r.Latency))
}

func printPingSummary(w io.Writer, rep pingReport) {
	s := rep.Summary
	fmt.Fprintf(w, "%d sent, %d received", s.Sent, s.Received)
	if s.Received > 0 {
		fmt.Fprintf(w, "; latency min/avg/max %s/%s/%s", fmtLatency(s.Min), fmtLatency(s.Avg), fmtLatency(s.Max))
	}
	fmt.Fprintln(w)
	switch {
	case s.Direct:
		fmt.Fprintf(w, "Direct path after %s.\n", fmtLatency(s.DirectAfter))
	case s.DirectAfter > 0:
		fmt.Fprintf(w, "The path went direct after %s, but the last reply was relayed.\n", fmtLatency(s.DirectAfter))
	case s.Received > 0:
		fmt.Fprintln(w, "The path stayed relayed (DERP): traffic works, but slower than a direct path.")
	}
	for _, h := range rep.Hints {
		fmt.Fprintln(w, "  - "+h)
	}
}

// fmtLatency rounds for display: 0.21ms, 12.3ms, 1.25s.
func fmtLatency(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return d.Round(10 * time.Millisecond).String()
}

// netcheckFrom runs a netcheck with the DERP map of a running node; nil
// if it fails.
func netcheckFrom(ctx context.Context, n *node.Node, log *slog.Logger) *node.NetReport {
	dm, err := n.DERPMap(ctx)
	if err != nil {
		return nil
	}
	r, err := node.Netcheck(ctx, dm, log)
	if err != nil {
		return nil
	}
	return r
}
