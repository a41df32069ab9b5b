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
	opts  Options
	derp  *derpserver.Server
	stun  *stunserver.STUNServer
	stun2 *stunserver.STUNServer // on STUNAddr2, or nil
	admit net.Listener           // loopback listener for DERP admission checks

	closeOnce sync.Once
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// New starts the relay's STUN socket and its internal admission endpoint.
// Serve DERP by mounting Handler on a TLS listener.
func New(opts Options) (*Relay, error) {
	if opts.PrivateKey.IsZero() || opts.Admit == nil {
		return nil, errors.New("relay: PrivateKey and Admit are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{opts: opts, cancel: cancel}
	logf := func(format string, args ...any) { opts.Logger.Debug(fmt.Sprintf(format, args...)) }
	r.derp = derpserver.New(opts.PrivateKey, logf)

	// derpserver asks an HTTP URL whether a client may connect. Serve
	// that on loopback, behind an unguessable path.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		return nil, fmt.Errorf("relay admission listener: %w", err)
	}
	r.admit = ln
	var tok [16]byte
	rand.Read(tok[:])
	path := "/admit/" + hex.EncodeToString(tok[:])
	r.derp.SetVerifyClientURL("http://" + ln.Addr().String() + path)
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+path, r.serveAdmit)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		srv.Serve(ln)
	}()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		<-ctx.Done()
		srv.Close()
	}()

	for _, st := range []struct {
		addr string
		srv  **stunserver.STUNServer
	}{{opts.STUNAddr, &r.stun}, {opts.STUNAddr2, &r.stun2}} {
		if st.addr == "" {
			continue
		}
		srv := stunserver.New(ctx)
		if err := srv.Listen(st.addr); err != nil {
			r.Close()
			return nil, fmt.Errorf("stun listen %s: %w", st.addr, err)
		}
		*st.srv = srv
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			srv.Serve()
		}()
	}
	return r, nil
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

// STUNPort returns the bound STUN UDP port, or -1 when STUN is disabled.
func (r *Relay) STUNPort() int {
	if r.stun == nil {
		return -1
	}
	return r.stun.LocalAddr().(*net.UDPAddr).Port
}

// STUNPort2 returns the bound port of the second STUN address, or -1.
func (r *Relay) STUNPort2() int {
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

// Close stops STUN, the admission endpoint and the DERP server. It is
// idempotent.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		r.cancel()
		r.admit.Close()
		r.derp.Close()
		r.wg.Wait()
	})
	return nil
}
