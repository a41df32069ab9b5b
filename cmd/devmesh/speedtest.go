package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/node"
	"github.com/devmesh/devmesh/tunnel"
)

type speedtestOptions struct {
	tunnelFlags
	direction string
	duration  time.Duration
	output    string
}

func newSpeedtestCmd() *cobra.Command {
	var o speedtestOptions
	cmd := &cobra.Command{
		Use:   "speedtest WS[.AGENT]",
		Short: "Measure throughput to or from a workspace over the tailnet",
		Long: `Measure TCP throughput over the tailnet between this machine and a
workspace agent: download (the agent sends) or upload (this machine sends),
printed each second and in total, in Mbit/s. The path in use (direct or
relayed) is shown too: relayed traffic is much slower.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runSpeedtest(cmd, args[0], o) },
	}
	o.tunnelFlags.add(cmd, true)
	cmd.Flags().StringVar(&o.direction, "direction", "down", "down (the workspace sends) or up (this machine sends)")
	cmd.Flags().DurationVarP(&o.duration, "time", "t", 5*time.Second, "how long to measure")
	addOutputFlag(cmd, &o.output)
	return cmd
}

// speedtestReport is speedtest's -o json output.
type speedtestReport struct {
	Workspace string `json:"workspace"`
	Agent     string `json:"agent"`
	tunnel.SpeedResult
	Mbps float64 `json:"mbps"`
	Path string  `json:"path,omitempty"`
}

func runSpeedtest(cmd *cobra.Command, targetArg string, o speedtestOptions) error {
	if err := checkOutput(o.output); err != nil {
		return err
	}
	dir := map[string]byte{"down": tunnel.Download, "up": tunnel.Upload}[o.direction]
	if dir == 0 {
		return fmt.Errorf("--direction %q: want up or down", o.direction)
	}
	if o.duration < 100*time.Millisecond || o.duration > tunnel.MaxSpeedtestDuration {
		return fmt.Errorf("--time %v: want between 100ms and %v", o.duration, tunnel.MaxSpeedtestDuration)
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
	dctx, cancelDial := context.WithTimeout(ctx, connectTimeout)
	conn, err := tunnel.Dial(dctx, tc.tailnet, "tcp", tc.ep.Addr, tunnel.SpeedtestPort)
	cancelDial()
	if node.IsRefused(err) {
		return fmt.Errorf("agent %s of %s does not serve the speedtest (port %d): its devmesh may be too old", tc.ep.Target.Agent, tc.ep.Target.Workspace, tunnel.SpeedtestPort)
	}
	if err != nil {
		return connectError(tc, err)
	}
	tc.prog.done("Connected")
	out := cmd.OutOrStdout()
	text := o.output != outputJSON
	if text {
		fmt.Fprintf(out, "%s %s for %v:\n", map[byte]string{tunnel.Download: "Download from", tunnel.Upload: "Upload to"}[dir], tc.ep.Target, o.duration)
	}
	printed := 0
	res, err := tunnel.RunSpeedtest(ctx, conn, dir, o.duration, func(iv tunnel.SpeedInterval) {
		if text {
			printInterval(out, iv)
			printed++
		}
	})
	if err != nil {
		return err
	}
	if text && len(res.Intervals) > printed {
		printInterval(out, res.Intervals[len(res.Intervals)-1]) // the last, partial second
	}
	rep := speedtestReport{Workspace: tc.ep.Target.Workspace, Agent: tc.ep.Target.Agent, SpeedResult: res, Mbps: res.Mbps(), Path: currentPath(ctx, tc)}
	if !text {
		return writeJSONOutput(out, rep)
	}
	fmt.Fprintf(out, "Total: %.1f Mbit/s (%.1f MB in %.2fs)", rep.Mbps, float64(res.Bytes)/1e6, res.Duration.Seconds())
	if rep.Path != "" {
		fmt.Fprintf(out, " via %s", rep.Path)
	}
	fmt.Fprintln(out)
	return nil
}

func printInterval(w io.Writer, iv tunnel.SpeedInterval) {
	fmt.Fprintf(w, "  %4.1f-%.1fs  %9.1f Mbit/s\n", iv.Start.Seconds(), iv.End.Seconds(), iv.Mbps())
}

// currentPath pings once to name the path in use; "" if no reply.
func currentPath(ctx context.Context, tc *tunnelConn) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r := tunnel.Ping(ctx, tc.tailnet, tc.ep.Addr, tunnel.PingOptions{Count: 1, Timeout: 2 * time.Second}, func(tunnel.PingReply) {})
	if r.Received == 0 {
		return ""
	}
	if r.Direct {
		return "a direct path"
	}
	return "DERP (relayed)"
}
