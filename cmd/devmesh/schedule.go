package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
)

// scheduleOptions are the flags of `devmesh schedule`.
type scheduleOptions struct {
	autostart   string
	noAutostart bool
	ttl         time.Duration
	noTTL       bool
	output      string
}

func newScheduleCmd() *cobra.Command {
	var o scheduleOptions
	cmd := &cobra.Command{
		Use:   "schedule WS [--autostart SPEC | --no-autostart] [--ttl D | --no-ttl]",
		Short: "Set or show a workspace's autostart and autostop",
		Long: `Set or show when a workspace starts and stops by itself.

--autostart takes a cron spec, five fields with an optional time zone:
  devmesh schedule dev --autostart "CRON_TZ=Europe/Berlin 30 8 * * 1-5"
starts dev at 08:30 Berlin time on weekdays (a spec without CRON_TZ is in
UTC). --ttl stops the workspace that long after it started, pushed back
while it is in use (open SSH sessions, port-forwards and daemon
connections):
  devmesh schedule dev --ttl 8h
--no-autostart and --no-ttl turn them off. A template's maximum TTL caps
every workspace's. Without flags, or as ` + "`devmesh schedule show WS`" + `, the
schedule is shown. An invalid spec, time zone or TTL changes nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(o.output); err != nil {
				return err
			}
			req, err := o.request(cmd)
			if err != nil {
				return err
			}
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			var sc client.WorkspaceSchedule
			if req.Autostart == nil && req.TTLMs == nil {
				sc, err = c.WorkspaceSchedule(cmd.Context(), args[0])
			} else {
				sc, err = c.UpdateWorkspaceSchedule(cmd.Context(), args[0], req)
			}
			if err != nil {
				return err
			}
			return printSchedule(cmd.OutOrStdout(), args[0], sc, o.output)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.autostart, "autostart", "", `start the workspace at these times: a cron spec such as "CRON_TZ=Europe/Berlin 30 8 * * 1-5"`)
	f.BoolVar(&o.noAutostart, "no-autostart", false, "turn autostart off")
	f.DurationVar(&o.ttl, "ttl", 0, "stop the workspace this long after it started or was last in use (e.g. 8h)")
	f.BoolVar(&o.noTTL, "no-ttl", false, "turn autostop off (a template's maximum TTL still applies)")
	addOutputFlag(cmd, &o.output)
	cmd.AddCommand(newScheduleShowCmd())
	return cmd
}

func newScheduleShowCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "show WS",
		Short: "Show a workspace's autostart and autostop",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			sc, err := c.WorkspaceSchedule(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printSchedule(cmd.OutOrStdout(), args[0], sc, output)
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// request turns the flags into a change; nil fields stay as they are.
func (o scheduleOptions) request(cmd *cobra.Command) (client.UpdateScheduleRequest, error) {
	var req client.UpdateScheduleRequest
	f := cmd.Flags()
	switch {
	case f.Changed("autostart") && o.noAutostart:
		return req, errors.New("choose one: --autostart SPEC or --no-autostart")
	case f.Changed("ttl") && o.noTTL:
		return req, errors.New("choose one: --ttl D or --no-ttl")
	case f.Changed("autostart") && o.autostart == "":
		return req, errors.New(`--autostart needs a spec, e.g. "CRON_TZ=Europe/Berlin 30 8 * * 1-5" (--no-autostart turns it off)`)
	case f.Changed("ttl") && o.ttl <= 0:
		return req, errors.New("--ttl must be positive, e.g. 8h (--no-ttl turns autostop off)")
	}
	if f.Changed("autostart") || o.noAutostart {
		spec := o.autostart
		req.Autostart = &spec
	}
	if f.Changed("ttl") || o.noTTL {
		ms := o.ttl.Milliseconds()
		req.TTLMs = &ms
	}
	return req, nil
}

func printSchedule(w io.Writer, name string, sc client.WorkspaceSchedule, output string) error {
	if output == outputJSON {
		return writeJSONOutput(w, sc)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "Workspace:\t%s\n", name)
	writeScheduleLines(tw, sc, "")
	return tw.Flush()
}

// writeScheduleLines writes the autostart and autostop lines of `show`
// and `schedule`.
func writeScheduleLines(tw io.Writer, sc client.WorkspaceSchedule, indent string) {
	if sc.Autostart == "" {
		fmt.Fprintf(tw, "%sAutostart:\toff\n", indent)
	} else {
		fmt.Fprintf(tw, "%sAutostart:\t%s (next: %s)\n", indent, sc.Autostart, formatTime(sc.NextAutostart))
	}
	ttl := time.Duration(sc.EffectiveTTLMs) * time.Millisecond
	switch {
	case ttl == 0:
		fmt.Fprintf(tw, "%sAutostop:\toff\n", indent)
	case sc.TTLMs != sc.EffectiveTTLMs:
		fmt.Fprintf(tw, "%sAutostop:\t%s after start or last use (the template's maximum)\n", indent, formatTTL(ttl))
	default:
		fmt.Fprintf(tw, "%sAutostop:\t%s after start or last use\n", indent, formatTTL(ttl))
	}
	if !sc.AutostopAt.IsZero() {
		fmt.Fprintf(tw, "%sStops at:\t%s unless in use\n", indent, formatTime(sc.AutostopAt))
	}
	if !sc.LastActivity.IsZero() {
		fmt.Fprintf(tw, "%sLast used:\t%s\n", indent, formatTime(sc.LastActivity))
	}
}

// formatTTL renders a duration without trailing zero units: 8h, 1h30m.
func formatTTL(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// buildInitiator is who queued a build: a user, or the schedule.
func buildInitiator(b client.Build) string {
	if b.InitiatedBy != "" {
		return "schedule (" + b.InitiatedBy + ")"
	}
	return b.Initiator
}

func newTemplatesEditCmd() *cobra.Command {
	var (
		defaultTTL, maxTTL time.Duration
		output             string
	)
	cmd := &cobra.Command{
		Use:   "edit NAME [--default-ttl D] [--max-ttl D]",
		Short: "Set or show a template's schedule policy: the default and maximum TTL of its workspaces",
		Long: `Set or show a template's schedule policy (admins and the template's creator).

--default-ttl is the autostop TTL of workspaces created from the template
without --ttl; --max-ttl caps every workspace's TTL (and applies to those
without one). 0 turns either off. Without flags the policy is shown.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			p, err := c.TemplateSchedule(ctx, args[0])
			if err != nil {
				return err
			}
			f := cmd.Flags()
			if f.Changed("default-ttl") || f.Changed("max-ttl") {
				if f.Changed("default-ttl") {
					p.DefaultTTLMs = defaultTTL.Milliseconds()
				}
				if f.Changed("max-ttl") {
					p.MaxTTLMs = maxTTL.Milliseconds()
				}
				if p, err = c.SetTemplateSchedule(ctx, args[0], p); err != nil {
					return err
				}
			}
			if output == outputJSON {
				return writeJSONOutput(cmd.OutOrStdout(), p)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 1, ' ', 0)
			fmt.Fprintf(tw, "Template:\t%s\n", args[0])
			fmt.Fprintf(tw, "Default TTL:\t%s\n", ttlOrOff(p.DefaultTTLMs))
			fmt.Fprintf(tw, "Maximum TTL:\t%s\n", ttlOrOff(p.MaxTTLMs))
			return tw.Flush()
		},
	}
	cmd.Flags().DurationVar(&defaultTTL, "default-ttl", 0, "autostop TTL of new workspaces that do not give one (0: none)")
	cmd.Flags().DurationVar(&maxTTL, "max-ttl", 0, "the longest TTL a workspace may have (0: no limit)")
	addOutputFlag(cmd, &output)
	return cmd
}

func ttlOrOff(ms int64) string {
	if ms == 0 {
		return "off"
	}
	return formatTTL(time.Duration(ms) * time.Millisecond)
}
