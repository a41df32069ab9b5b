// Package relay embeds the coordinator's DERP relay and STUN server. The
// relay forwards only encrypted WireGuard and disco packets, and admits
// only node keys that the control plane says are registered and unexpired.
package relay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"tailscale.com/derp/derpserver"
	"tailscale.com/net/stunserver"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// Options configures a Relay.
type Options struct {
	// PrivateKey is the DERP server's persistent node key.
	PrivateKey key.NodePrivate
	// Admit reports whether a node key may use the relay.
	Admit  func(key.NodePublic) bool
	Logger *slog.Logger
	// STUNAddr is the UDP address for STUN ("" disables STUN).
	STUNAddr string
	// STUNAddr2 is a second STUN address ("" for none). Clients probe
	// both: a NAT that maps one socket to different public ports for the
	// two (a "hard" NAT) shows, which one address cannot tell.
	STUNAddr2 string
}

// Relay is an embedded DERP server plus STUN.
type Relay struct {
	opts Options
	derp *derpserver.Server

	// mu guards the fields set by Start and read by Close and STUNPort.
	mu      sync.Mutex
	started bool
	closed  bool
	stun    *stunserver.STUNServer
	stun2   *stunserver.STUNServer // on STUNAddr2, or nil
	admit   net.Listener           // loopback listener for DERP admission checks
	admSrv  *http.Server
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	errs    []error // what the serving goroutines reported
	errsMu  sync.Mutex
}

// New validates opts and prepares the relay. It binds no socket and
// starts no goroutine: Start does.
func New(opts Options) (*Relay, error) {
	if opts.PrivateKey.IsZero() || opts.Admit == nil {
		return nil, errors.New("relay: PrivateKey and Admit are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	for _, a := range []string{opts.STUNAddr, opts.STUNAddr2} {
		if a == "" {
			continue
		}
		if _, err := net.ResolveUDPAddr("udp", a); err != nil {
			return nil, fmt.Errorf("relay: STUN address %q: %w", a, err)
		}
	}
	logf := func(format string, args ...any) { opts.Logger.Debug(fmt.Sprintf(format, args...)) }
	return &Relay{opts: opts, derp: derpserver.New(opts.PrivateKey, logf)}, nil
}

// Start binds the STUN socket and the loopback admission endpoint that
// DERP asks about each client, and serves both until Close. Serve DERP
// itself by mounting Handler on a TLS listener. On error nothing is left
// bound.
func (r *Relay) Start(ctx context.Context) (err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.closed {
		return errors.New("relay: already started or closed")
	}
	r.started = true
	ctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	defer func() {
		if err != nil {
			r.stopLocked()
		}
	}()
	// derpserver asks an HTTP URL whether a client may connect. Serve
	// that on loopback, behind an unguessable path.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("relay admission listener: %w", err)
	}
	r.admit = ln
	var tok [16]byte
	rand.Read(tok[:])
	path := "/admit/" + hex.EncodeToString(tok[:])
	r.derp.SetVerifyClientURL("http://" + ln.Addr().String() + path)
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+path, r.serveAdmit)
	r.admSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := r.admSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.report(fmt.Errorf("relay admission endpoint: %w", err))
		}
	}()
	for _, st := range []struct {
		addr string
		srv  **stunserver.STUNServer
	}{{r.opts.STUNAddr, &r.stun}, {r.opts.STUNAddr2, &r.stun2}} {
		if st.addr == "" {
			continue
		}
		srv := stunserver.New(ctx)
		if err := srv.Listen(st.addr); err != nil {
			return fmt.Errorf("stun listen %s: %w", st.addr, err)
		}
		*st.srv = srv
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := srv.Serve(); err != nil {
				r.report(fmt.Errorf("stun: %w", err))
			}
		}()
	}
	return nil
}

func (r *Relay) report(err error) {
	r.opts.Logger.Error("relay stopped serving", "err", err)
	r.errsMu.Lock()
	defer r.errsMu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *Relay) serveAdmit(w http.ResponseWriter, req *http.Request) {
	var in tailcfg.DERPAdmitClientRequest
	if err := json.NewDecoder(io.LimitReader(req.Body, 4<<10)).Decode(&in); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	allow := r.opts.Admit(in.NodePublic)
	if !allow {
		r.opts.Logger.Info("relay refused unknown node key", "node", in.NodePublic.ShortString(), "src", in.Source)
	}
	json.NewEncoder(w).Encode(tailcfg.DERPAdmitClientResponse{Allow: allow})
}

// STUNPort returns the bound STUN UDP port, or -1 when STUN is disabled
// or the relay is not started.
func (r *Relay) STUNPort() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stun == nil {
		return -1
	}
	return r.stun.LocalAddr().(*net.UDPAddr).Port
}

// STUNPort2 returns the bound port of the second STUN address, or -1.
func (r *Relay) STUNPort2() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stun2 == nil {
		return -1
	}
	return r.stun2.LocalAddr().(*net.UDPAddr).Port
}

// Handler serves /derp (with WebSocket support), the probe and latency
// endpoints and /generate_204. Mount it on a TLS, HTTP/1.1 listener.
func (r *Relay) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/derp", derpserver.AddWebSocketSupport(r.derp, derpserver.Handler(r.derp)))
	mux.HandleFunc("/derp/probe", derpserver.ProbeHandler)
	mux.HandleFunc("/derp/latency-check", derpserver.ProbeHandler)
	mux.HandleFunc("/generate_204", derpserver.ServeNoContent)
	return mux
}

// Close stops STUN, the admission endpoint and the DERP server, waits for
// their goroutines, and returns what went wrong while serving. It is
// idempotent.
func (r *Relay) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		r.stopLocked()
		r.derp.Close()
	}
	r.errsMu.Lock()
	defer r.errsMu.Unlock()
	return errors.Join(r.errs...)
}

// stopLocked stops what Start started. r.mu is held.
func (r *Relay) stopLocked() {
	if r.cancel != nil {
		r.cancel()
	}
	if r.admSrv != nil {
		r.admSrv.Close()
	} else if r.admit != nil {
		r.admit.Close()
	}
	r.wg.Wait()
}

// ExpVar returns the DERP server's counters and gauges (clients, bytes,
// packets, queue delay) as an expvar map, read when it is read.
func (r *Relay) ExpVar() expvar.Var { return r.derp.ExpVar(false) }
