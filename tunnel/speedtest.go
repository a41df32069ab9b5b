package tunnel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// SpeedtestPort is where agents serve the speedtest on their tailnet
// address.
//
// The protocol: the client connects and sends one byte, 'd' (download)
// or 'u' (upload), then the duration in milliseconds as 8 bytes big
// endian. For 'd' the agent writes bytes until the duration has elapsed,
// then closes. For 'u' the client writes for the duration, then
// half-closes; the agent replies with the number of bytes it received, 8
// bytes big endian, and closes.
const SpeedtestPort = 4444

// Speedtest directions, as sent on the wire.
const (
	Download byte = 'd'
	Upload   byte = 'u'
)

// MaxSpeedtestDuration bounds a test's duration.
const MaxSpeedtestDuration = 5 * time.Minute

// SpeedInterval is the throughput of one stretch of a test (normally a
// second).
type SpeedInterval struct {
	Start time.Duration `json:"start_ns"`
	End   time.Duration `json:"end_ns"`
	Bytes int64         `json:"bytes"`
}

// Mbps returns the interval's throughput in Mbit/s.
func (i SpeedInterval) Mbps() float64 { return mbps(i.Bytes, i.End-i.Start) }

// SpeedResult is a whole test. Bytes and Duration are as measured by the
// receiving side's count: for an upload, the agent's.
type SpeedResult struct {
	Direction string          `json:"direction"` // "download" or "upload"
	Bytes     int64           `json:"bytes"`
	Duration  time.Duration   `json:"duration_ns"`
	Intervals []SpeedInterval `json:"intervals"`
}

// Mbps returns the overall throughput in Mbit/s.
func (r SpeedResult) Mbps() float64 { return mbps(r.Bytes, r.Duration) }

func mbps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) * 8 / d.Seconds() / 1e6
}

// RunSpeedtest runs one test over conn (connected to an agent's
// SpeedtestPort), calling onInterval (if set) each second with the
// throughput seen by this side. It closes conn.
func RunSpeedtest(ctx context.Context, conn net.Conn, dir byte, d time.Duration, onInterval func(SpeedInterval)) (SpeedResult, error) {
	defer conn.Close()
	if dir != Download && dir != Upload {
		return SpeedResult{}, fmt.Errorf("speedtest: unknown direction %q", dir)
	}
	if d <= 0 || d > MaxSpeedtestDuration {
		return SpeedResult{}, fmt.Errorf("speedtest: duration %v out of range (up to %v)", d, MaxSpeedtestDuration)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	// A silent or vanished agent must not hang the test forever.
	conn.SetDeadline(time.Now().Add(d + 30*time.Second))

	var hdr [9]byte
	hdr[0] = dir
	binary.BigEndian.PutUint64(hdr[1:], uint64(d.Milliseconds()))
	if _, err := conn.Write(hdr[:]); err != nil {
		return SpeedResult{}, speedErr(ctx, err)
	}
	var counted atomic.Int64
	start := time.Now()
	ticks := watchThroughput(&counted, start, onInterval)
	var res SpeedResult
	var err error
	if dir == Download {
		// Count what arrives within d: the agent stops writing at d, but
		// what its TCP stack still holds (megabytes) would arrive after,
		// stretching a slow test well past d.
		conn.SetReadDeadline(start.Add(d))
		res, err = download(conn, &counted)
	} else {
		res, err = upload(conn, &counted, start.Add(d))
	}
	res.Duration = time.Since(start)
	res.Intervals = ticks.stop(res.Duration)
	if err != nil {
		return res, speedErr(ctx, err)
	}
	return res, nil
}

func download(conn net.Conn, counted *atomic.Int64) (SpeedResult, error) {
	buf := make([]byte, 128<<10)
	for {
		n, err := conn.Read(buf)
		counted.Add(int64(n))
		var ne net.Error
		if errors.Is(err, io.EOF) || (errors.As(err, &ne) && ne.Timeout()) {
			return SpeedResult{Direction: "download", Bytes: counted.Load()}, nil
		}
		if err != nil {
			return SpeedResult{Direction: "download", Bytes: counted.Load()}, err
		}
	}
}

func upload(conn net.Conn, counted *atomic.Int64, until time.Time) (SpeedResult, error) {
	res := SpeedResult{Direction: "upload"}
	buf := make([]byte, 128<<10)
	for time.Now().Before(until) {
		n, err := conn.Write(buf)
		counted.Add(int64(n))
		if err != nil {
			return res, err
		}
	}
	cw, ok := conn.(closeWriter)
	if !ok {
		return res, errors.New("the connection cannot be half-closed")
	}
	if err := cw.CloseWrite(); err != nil {
		return res, err
	}
	var reply [8]byte
	if _, err := io.ReadFull(conn, reply[:]); err != nil {
		return res, fmt.Errorf("read the agent's byte count: %w", err)
	}
	res.Bytes = int64(binary.BigEndian.Uint64(reply[:]))
	return res, nil
}

func speedErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return fmt.Errorf("speedtest: %w", err)
}

// throughputWatch samples a byte counter once a second.
type throughputWatch struct {
	done      chan struct{}
	finished  chan []SpeedInterval
	counted   *atomic.Int64
	start     time.Time
	lastBytes int64
}

func watchThroughput(counted *atomic.Int64, start time.Time, onInterval func(SpeedInterval)) *throughputWatch {
	w := &throughputWatch{done: make(chan struct{}), finished: make(chan []SpeedInterval, 1), counted: counted, start: start}
	go func() {
		var out []SpeedInterval
		var last time.Duration
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-w.done:
				w.finished <- out
				return
			case now := <-t.C:
				n := counted.Load()
				iv := SpeedInterval{Start: last, End: now.Sub(start), Bytes: n - w.lastBytes}
				last, w.lastBytes = iv.End, n
				out = append(out, iv)
				if onInterval != nil {
					onInterval(iv)
				}
			}
		}
	}()
	return w
}

// stop ends sampling and returns the intervals, with a last partial one
// up to end if it holds at least a tenth of a second.
func (w *throughputWatch) stop(end time.Duration) []SpeedInterval {
	close(w.done)
	out := <-w.finished
	var last time.Duration
	if len(out) > 0 {
		last = out[len(out)-1].End
	}
	if end-last >= 100*time.Millisecond {
		out = append(out, SpeedInterval{Start: last, End: end, Bytes: w.counted.Load() - w.lastBytes})
	}
	return out
}
