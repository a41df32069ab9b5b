package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
)

// writeWorkspaceTable writes one row per agent (one row for a workspace
// without agents, e.g. a stopped one); withOwner adds an OWNER column.
func writeWorkspaceTable(w io.Writer, list []client.Workspace, withOwner bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	owner := func(ws client.Workspace) string {
		if withOwner {
			return ws.Owner + "\t"
		}
		return ""
	}
	if withOwner {
		fmt.Fprint(tw, "OWNER\t")
	}
	fmt.Fprintln(tw, "WORKSPACE\tTEMPLATE\tSTATE\tAGENT\tSTATUS\tLIFECYCLE\tADDRESS\tVERSION\tOS/ARCH\tLAST SEEN")
	for _, ws := range list {
		if len(ws.Agents) == 0 {
			fmt.Fprintf(tw, "%s%s\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\n", owner(ws), ws.Name, templateName(ws), workspaceState(ws))
		}
		for _, a := range ws.Agents {
			fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", owner(ws), ws.Name, templateName(ws), workspaceState(ws), a.Name,
				a.Status, a.Lifecycle, orDash(firstAddress(a)), orDash(a.Version), platform(a), lastSeen(a))
		}
	}
	return tw.Flush()
}

func templateName(ws client.Workspace) string {
	switch {
	case ws.Template == "":
		return "(external)"
	case ws.Outdated:
		return fmt.Sprintf("%s v%d (outdated)", ws.Template, ws.TemplateVersion)
	}
	return fmt.Sprintf("%s v%d", ws.Template, ws.TemplateVersion)
}

// workspaceState sums up a workspace's latest build: started, stopped,
// starting, stopping, deleting (queued or running), canceling, or the
// transition and how it ended ("start failed", "stop canceled"). An
// external workspace has no builds: "-".
func workspaceState(ws client.Workspace) string {
	b := ws.LatestBuild
	if b == nil {
		return "-"
	}
	switch b.Status {
	case client.BuildSucceeded:
		switch b.Transition {
		case client.TransitionStart:
			return "started"
		case client.TransitionStop:
			return "stopped"
		}
		return "deleted"
	case client.BuildPending, client.BuildRunning:
		switch b.Transition {
		case client.TransitionStart:
			return "starting"
		case client.TransitionStop:
			return "stopping"
		}
		return "deleting"
	case client.BuildCanceling:
		return "canceling"
	}
	return b.Transition + " " + b.Status
}

func firstAddress(a client.Agent) string {
	if len(a.Addresses) == 0 {
		return ""
	}
	return a.Addresses[0]
}

func platform(a client.Agent) string {
	if a.OS == "" {
		return "-"
	}
	return a.OS + "/" + a.Arch
}

// lastSeen says when an agent was last heard of: "now" while connected.
func lastSeen(a client.Agent) string {
	if a.Status == client.AgentConnected {
		return "now"
	}
	return formatTime(a.LastSeen)
}

// writeWorkspace writes `devmesh show`: the workspace, its latest build,
// its metadata and its agents.
func writeWorkspace(w io.Writer, ws client.Workspace, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "Workspace:\t%s\n", ws.Name)
	fmt.Fprintf(tw, "Owner:\t%s\n", ws.Owner)
	if ws.Template == "" {
		fmt.Fprintf(tw, "Template:\t%s\n", templateName(ws))
	} else {
		fmt.Fprintf(tw, "Template:\t%s (version %d)\n", ws.Template, ws.TemplateVersion)
		if ws.Outdated {
			fmt.Fprintf(tw, "\tOutdated: the active version is %d (`devmesh update %s` moves to it)\n", ws.ActiveVersion, ws.Name)
		}
	}
	fmt.Fprintf(tw, "Created:\t%s\n", formatTime(ws.CreatedAt))
	if b := ws.LatestBuild; b != nil {
		fmt.Fprintf(tw, "State:\t%s\n", workspaceState(ws))
		fmt.Fprintf(tw, "Latest build:\t%s\n", describeBuild(*b, now))
		if b.Reason != "" {
			fmt.Fprintf(tw, "  Reason:\t%s\n", b.Reason)
		}
	}
	if ws.Schedule != nil {
		writeScheduleLines(tw, *ws.Schedule, "")
	}
	if len(ws.Parameters) > 0 {
		fmt.Fprintf(tw, "\nParameters:\n")
		names := make([]string, 0, len(ws.Parameters))
		for k := range ws.Parameters {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			fmt.Fprintf(tw, "  %s:\t%s\n", k, ws.Parameters[k])
		}
	}
	if len(ws.Metadata) > 0 {
		fmt.Fprintf(tw, "\nMetadata:\n")
		for _, m := range ws.Metadata {
			fmt.Fprintf(tw, "  %s:\t%s\n", m.Key, metadataValue(m))
		}
	}
	if len(ws.Agents) == 0 && ws.LatestBuild != nil {
		fmt.Fprintf(tw, "\nNo agents (they appear when a start build has succeeded).\n")
	}
	for _, a := range ws.Agents {
		status := a.Status
		if a.Status == client.AgentDisconnected && !a.LastSeen.IsZero() {
			status += fmt.Sprintf(" (last seen %s ago)", now.Sub(a.LastSeen).Round(time.Second))
		}
		fmt.Fprintf(tw, "\nAgent %s:\n", a.Name)
		fmt.Fprintf(tw, "  Status:\t%s\n", status)
		fmt.Fprintf(tw, "  Lifecycle:\t%s\n", a.Lifecycle)
		fmt.Fprintf(tw, "  Address:\t%s\n", orDash(strings.Join(a.Addresses, ", ")))
		fmt.Fprintf(tw, "  Version:\t%s\n", orDash(a.Version))
		fmt.Fprintf(tw, "  OS/arch:\t%s\n", platform(a))
		fmt.Fprintf(tw, "  Last seen:\t%s\n", lastSeen(a))
		fmt.Fprintf(tw, "  SSH:\t%d open connections, %d bytes in, %d bytes out\n", a.Connections, a.RxBytes, a.TxBytes)
		if a.SSHHostKey != "" {
			fmt.Fprintf(tw, "  Host key:\t%s\n", a.SSHHostKey)
		}
		if a.Status == client.AgentConnected {
			fmt.Fprintf(tw, "  Ports:\t%s\n", portsLine(a))
		}
	}
	return tw.Flush()
}

// portsLine describes an agent's listening ports, one entry per port:
// "8000 python3 (0.0.0.0, ::), 5432 postgres (127.0.0.1)".
func portsLine(a client.Agent) string {
	if a.PortsUnsupported != "" {
		return "not reported: " + a.PortsUnsupported
	}
	if len(a.ListeningPorts) == 0 {
		return "none"
	}
	var parts []string
	for i := 0; i < len(a.ListeningPorts); {
		p := a.ListeningPorts[i]
		var addrs []string
		for ; i < len(a.ListeningPorts) && a.ListeningPorts[i].Port == p.Port; i++ {
			addrs = append(addrs, a.ListeningPorts[i].Address)
		}
		part := strconv.Itoa(p.Port)
		if p.Process != "" {
			part += " " + p.Process
		}
		parts = append(parts, part+" ("+strings.Join(addrs, ", ")+")")
	}
	return strings.Join(parts, ", ")
}

// describeBuild is one line about a build: "#3 start succeeded in 2.1s,
// 2026-11-29 15:04 by alice".
func describeBuild(b client.Build, now time.Time) string {
	s := fmt.Sprintf("#%d %s %s", b.Number, b.Transition, b.Status)
	switch {
	case !b.FinishedAt.IsZero() && !b.StartedAt.IsZero():
		s += " in " + b.FinishedAt.Sub(b.StartedAt).Round(100*time.Millisecond).String()
	case b.Status == client.BuildRunning && !b.StartedAt.IsZero():
		s += " for " + now.Sub(b.StartedAt).Round(time.Second).String()
	}
	s += ", " + formatTime(b.CreatedAt)
	if by := buildInitiator(b); by != "" {
		s += " by " + by
	}
	return s
}

// metadataValue renders a metadata item's value; a sensitive one hidden
// from the caller says so.
func metadataValue(m client.MetadataItem) string {
	switch {
	case m.Hidden:
		return "(sensitive: shown to admins only)"
	case m.Value == "":
		return "-"
	}
	return m.Value
}
