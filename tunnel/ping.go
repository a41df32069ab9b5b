package tunnel

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/devmesh/devmesh/node"
)

// PingOptions configures Ping.
type PingOptions struct {
	// Count is how many pings to send; zero pings until the path is
	// direct, at most UntilDirectMax times.
	Count int
	// Interval between pings (default 1s; the first goes at once).
	Interval time.Duration
	// Timeout for each reply (default 5s).
	Timeout time.Duration
}

// UntilDirectMax bounds a Ping with Count zero.
const UntilDirectMax = 10

// PingReply is one ping's outcome.
type PingReply struct {
	Seq     int           `json:"seq"`
	Latency time.Duration `json:"latency_ns,omitempty"`
	// Direct: the reply came over a direct UDP path, from Endpoint.
	Direct   bool   `json:"direct"`
	Endpoint string `json:"endpoint,omitempty"`
	// DERPRegion is the relay region's code when not direct.
	DERPRegion string `json:"derp_region,omitempty"`
	Err        string `json:"error,omitempty"`
}

// Path describes the reply's path for people.
func (r PingReply) Path() string {
	if r.Direct {
		return "direct " + r.Endpoint
	}
	if r.DERPRegion != "" {
		return "DERP(" + r.DERPRegion + ")"
	}
	return "DERP"
}

// PingSummary sums a Ping run up.
type PingSummary struct {
	Sent     int `json:"sent"`
	Received int `json:"received"`
	// Direct: the last reply came over a direct path.
	Direct bool `json:"direct"`
	// DirectAfter is the time from the first ping until the first direct
	// reply (zero if none was direct).
	DirectAfter time.Duration `json:"direct_after_ns,omitempty"`
	Min         time.Duration `json:"min_ns"`
	Avg         time.Duration `json:"avg_ns"`
	Max         time.Duration `json:"max_ns"`
}

// Ping sends disco pings to ip over n (the pings that also set up a
// direct path) and calls onReply for each, then sums up. It stops early,
// without error, when ctx ends.
func Ping(ctx context.Context, n Tailnet, ip netip.Addr, opts PingOptions, onReply func(PingReply)) PingSummary {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	count := opts.Count
	if count <= 0 {
		count = UntilDirectMax
	}
	var sum PingSummary
	var total time.Duration
	start := time.Now()
	for seq := 1; seq <= count && ctx.Err() == nil; seq++ {
		if seq > 1 {
			select {
			case <-ctx.Done():
				return finish(sum, total)
			case <-time.After(opts.Interval):
			}
		}
		res, err := pingOnce(ctx, n, ip, opts.Timeout)
		if ctx.Err() != nil {
			break
		}
		sum.Sent++
		r := PingReply{Seq: seq}
		if err != nil {
			r.Err = err.Error()
			onReply(r)
			continue
		}
		r.Latency, r.Direct, r.Endpoint, r.DERPRegion = res.Latency, res.Direct, res.Endpoint, res.DERPRegionCode
		if r.DERPRegion == "" && res.DERPRegion != 0 {
			r.DERPRegion = fmt.Sprint(res.DERPRegion)
		}
		sum.Received++
		total += r.Latency
		sum.Min = minPositive(sum.Min, r.Latency)
		sum.Max = max(sum.Max, r.Latency)
		sum.Direct = r.Direct
		if r.Direct && sum.DirectAfter == 0 {
			sum.DirectAfter = max(time.Since(start), time.Microsecond)
		}
		onReply(r)
		if opts.Count <= 0 && r.Direct {
			break
		}
	}
	return finish(sum, total)
}

// First and longest wait for one disco ping inside pingOnce. A ping sent
// before the peer has this node in its netmap is dropped, not answered
// late, so it is resent soon; the wait doubles each time, so that a path
// slower than the first wait still gets its answer.
const (
	pingFirstAttempt = 50 * time.Millisecond
	pingMaxAttempt   = time.Second
)

// pingOnce pings ip until a reply comes or timeout passes; the latency is
// that of the ping answered.
func pingOnce(ctx context.Context, n Tailnet, ip netip.Addr, timeout time.Duration) (node.PingResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for wait := pingFirstAttempt; ; wait = min(2*wait, pingMaxAttempt) {
		actx, acancel := context.WithTimeout(ctx, wait)
		res, err := n.Ping(actx, ip)
		acancel()
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("no reply within %v", timeout)
		}
		if actx.Err() == nil {
			// Failed at once (the peer is not in the netmap yet): do
			// not spin.
			select {
			case <-ctx.Done():
				return res, fmt.Errorf("no reply within %v", timeout)
			case <-time.After(wait):
			}
		}
	}
}

func finish(sum PingSummary, total time.Duration) PingSummary {
	if sum.Received > 0 {
		sum.Avg = total / time.Duration(sum.Received)
	}
	return sum
}

func minPositive(a, b time.Duration) time.Duration {
	if a == 0 || b < a {
		return b
	}
	return a
}

// RelayHints explains, from a netcheck of this host, why a path may stay
// relayed. r may be nil (netcheck failed).
func RelayHints(r *node.NetReport) []string {
	if r == nil {
		return []string{"Could not check this network (run `devmesh netcheck`)."}
	}
	var hints []string
	if !r.UDP {
		hints = append(hints, "UDP looks blocked here: no STUN reply from the coordinator. "+
			"Direct paths need outbound UDP; allow it in your firewall, or traffic stays relayed through DERP (slower).")
	}
	if r.CaptivePortal {
		hints = append(hints, "A captive portal seems to intercept this network's traffic: log in to it first.")
	}
	if r.MappingVariesByDestIP != nil && *r.MappingVariesByDestIP {
		hints = append(hints, "This network's NAT maps each destination to a different public port (a hard, "+
			"endpoint-dependent NAT): direct paths work only if the workspace side has a public address or a NAT that accepts UDP from any port.")
	}
	if len(hints) == 0 {
		hint := "UDP works from here"
		if r.MappingVariesByDestIP == nil {
			hint += " (whether this NAT is hard could not be told: it needs STUN on two ports or addresses)"
		} else {
			hint += " and the NAT looks easy"
		}
		hints = append(hints, hint+". The workspace's network probably blocks UDP or sits behind a hard NAT: "+
			"run `devmesh netcheck` there.")
	}
	return hints
}
