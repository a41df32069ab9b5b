//go:build linux

package netlab

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Row is one line of the lab's summary table.
type Row struct {
	Topology string
	Path     string        // "direct", "relayed (DERP)", ...
	ToDirect time.Duration // until the first direct ping reply
	Mbps     float64       // 16 MiB transfer over SSH, agent to client
	Note     string
}

var (
	rowsMu sync.Mutex
	rows   []Row
)

// Record adds a row to the table Main prints after the tests.
func Record(r Row) {
	rowsMu.Lock()
	defer rowsMu.Unlock()
	rows = append(rows, r)
}

// PrintTable writes the recorded rows, sorted by topology.
func PrintTable(w io.Writer) {
	rowsMu.Lock()
	defer rowsMu.Unlock()
	if len(rows) == 0 {
		return
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Topology < rows[j].Topology })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "topology\tpath\ttime to direct\t16 MiB over ssh\tnote")
	for _, r := range rows {
		direct, mbps := "-", "-"
		switch {
		case r.Path == "direct":
			direct = r.ToDirect.Round(10 * time.Millisecond).String()
		case strings.HasPrefix(r.Path, "relayed"):
			direct = "relayed"
		}
		if r.Mbps > 0 {
			mbps = fmt.Sprintf("%.0f Mbit/s", r.Mbps)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Topology, r.Path, direct, mbps, r.Note)
	}
	tw.Flush()
}
