package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
)

// newTransitionCmd returns `devmesh start|stop WS`.
func newTransitionCmd(transition, short string) *cobra.Command {
	var (
		noWait       bool
		agentTimeout time.Duration
	)
	long := short + `.

The command queues a build and follows its log (terraform's output) until it
ends; it exits non-zero if the build failed. Ctrl-C asks whether to cancel
the build; --no-wait returns as soon as the build is queued.`
	if transition == client.TransitionStart {
		long += `

After the build it waits for the workspace's agents to connect (at most
--agent-timeout), so that ` + "`devmesh ssh WS`" + ` works right after.`
	}
	cmd := &cobra.Command{
		Use:   transition + " WS",
		Short: short,
		Long:  long,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			b, err := c.CreateBuild(ctx, args[0], transition)
			if err != nil {
				return err
			}
			if err := newBuildWaiter(cmd, c, args[0]).queued(ctx, b, noWait); err != nil || noWait || transition != client.TransitionStart {
				return err
			}
			return waitAgentsReady(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), c, args[0], agentTimeout)
		},
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the build is queued")
	if transition == client.TransitionStart {
		addAgentTimeoutFlag(cmd, &agentTimeout)
	}
	return cmd
}

// addAgentTimeoutFlag adds --agent-timeout, how long a command that
// starts a workspace waits for its agents after the build.
func addAgentTimeoutFlag(cmd *cobra.Command, p *time.Duration) {
	cmd.Flags().DurationVar(p, "agent-timeout", defaultAgentTimeout, "how long to wait for the agents to connect after the build (0: do not wait)")
}

func newStartCmd() *cobra.Command {
	return newTransitionCmd(client.TransitionStart, "Start a workspace: build it with its template")
}

func newStopCmd() *cobra.Command {
	return newTransitionCmd(client.TransitionStop, "Stop a workspace: its compute goes, its disks and state stay")
}

func newRestartCmd() *cobra.Command {
	var (
		noWait       bool
		agentTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "restart WS",
		Short: "Stop, then start a workspace",
		Long: `Stop, then start a workspace. The start is queued once the stop has
succeeded (a workspace has one build queued or running at a time); with
--no-wait the command returns once the start is queued. After the start it
waits for the agents to connect, as start does.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			ctx, ws := cmd.Context(), args[0]
			bw := newBuildWaiter(cmd, c, ws)
			b, err := c.CreateBuild(ctx, ws, client.TransitionStop)
			if err != nil {
				return err
			}
			if err := bw.queued(ctx, b, false); err != nil {
				return err
			}
			if b, err = c.CreateBuild(ctx, ws, client.TransitionStart); err != nil {
				return err
			}
			if err := bw.queued(ctx, b, noWait); err != nil || noWait {
				return err
			}
			return waitAgentsReady(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), c, ws, agentTimeout)
		},
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the start is queued (after the stop)")
	addAgentTimeoutFlag(cmd, &agentTimeout)
	return cmd
}

func newCancelCmd() *cobra.Command {
	var (
		number int
		noWait bool
	)
	cmd := &cobra.Command{
		Use:   "cancel WS",
		Short: "Cancel a workspace's queued or running build",
		Long: `Cancel a workspace's latest build (or --build N). A queued build ends at
once; a running one has terraform interrupted (gracefully, then forcefully
after a grace period) and ends canceled. The workspace keeps the state
terraform left. The command follows the build until it has ended unless
--no-wait.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			ctx, ws := cmd.Context(), args[0]
			b, err := c.CancelBuild(ctx, ws, number)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Build #%d (%s) of %s is %s.\n", b.Number, b.Transition, ws, b.Status)
			if noWait || b.Finished() {
				return nil
			}
			err = newBuildWaiter(cmd, c, ws).wait(ctx, b)
			if b, berr := c.Build(ctx, ws, b.Number); berr == nil && b.Status == client.BuildCanceled {
				return nil // the cancel worked: that is success here
			}
			return err
		},
	}
	cmd.Flags().IntVar(&number, "build", 0, "the build number (default: the latest)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the cancel is recorded")
	return cmd
}

func newBuildsCmd() *cobra.Command {
	var (
		output string
		follow int
	)
	cmd := &cobra.Command{
		Use:   "builds WS",
		Short: "List a workspace's builds, or follow one's log",
		Long: `List a workspace's builds, oldest first. --follow N prints build N's log
from the start and follows it until the build ends (0: the latest build).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			ctx, ws := cmd.Context(), args[0]
			if cmd.Flags().Changed("follow") {
				b, err := c.Build(ctx, ws, follow)
				if err != nil {
					return err
				}
				return newBuildWaiter(cmd, c, ws).wait(ctx, b)
			}
			list, err := c.ListBuilds(ctx, ws)
			if err != nil {
				return err
			}
			if output == outputJSON {
				return writeJSONOutput(cmd.OutOrStdout(), list)
			}
			return writeBuildsTable(cmd, list)
		},
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().IntVar(&follow, "follow", 0, "follow build `N`'s log until it ends (0: the latest)")
	return cmd
}

func writeBuildsTable(cmd *cobra.Command, list []client.Build) error {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BUILD\tTRANSITION\tSTATUS\tVERSION\tBY\tQUEUED\tTOOK\tREASON")
	for _, b := range list {
		fmt.Fprintf(tw, "#%d\t%s\t%s\tv%d\t%s\t%s\t%s\t%s\n", b.Number, b.Transition, b.Status, b.TemplateVersion,
			orDash(buildInitiator(b)), formatTime(b.CreatedAt), buildDuration(b), b.Reason)
	}
	return tw.Flush()
}

// buildDuration is how long a build ran (or has run so far).
func buildDuration(b client.Build) string {
	switch {
	case b.StartedAt.IsZero():
		return "-"
	case b.FinishedAt.IsZero():
		return time.Since(b.StartedAt).Round(time.Second).String() + "..."
	}
	return b.FinishedAt.Sub(b.StartedAt).Round(100 * time.Millisecond).String()
}
