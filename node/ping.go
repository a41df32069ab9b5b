package node

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"tailscale.com/tailcfg"
)

// PingResult is one disco ping's outcome.
type PingResult struct {
	Latency time.Duration
	// Direct is true when the reply came over a direct UDP path.
	Direct bool
	// Endpoint is the peer's ip:port on a direct path.
	Endpoint string
	// DERPRegion is the relay region used when not direct.
	DERPRegion     int
	DERPRegionCode string
}

// Ping sends one disco ping to the peer with that tailnet address. Disco
// pings are what upgrade a relayed path to a direct one.
func (n *Node) Ping(ctx context.Context, ip netip.Addr) (PingResult, error) {
	res, err := n.lc.Ping(ctx, ip, tailcfg.PingDisco)
	if err != nil {
		return PingResult{}, err
	}
	if res.Err != "" {
		return PingResult{}, errors.New(res.Err)
	}
	return PingResult{
		Latency:        time.Duration(res.LatencySeconds * float64(time.Second)),
		Direct:         res.Endpoint != "",
		Endpoint:       res.Endpoint,
		DERPRegion:     res.DERPRegionID,
		DERPRegionCode: res.DERPRegionCode,
	}, nil
}

// WaitDirect pings ip until a reply comes over a direct path or ctx ends,
// returning the last result.
func (n *Node) WaitDirect(ctx context.Context, ip netip.Addr) (PingResult, error) {
	var last PingResult
	var lastErr error
	for {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		res, err := n.Ping(pctx, ip)
		cancel()
		if err == nil {
			last, lastErr = res, nil
			if res.Direct {
				return res, nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return last, lastErr
			}
			return last, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
