package control

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"

	"golang.org/x/net/http2"
	"tailscale.com/control/controlhttp/controlhttpserver"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
)

// maxBody bounds every request body read inside Noise; register
// requests, which anyone may send, get a smaller bound (a real one is a
// few KiB).
const (
	maxBody         = 1 << 20
	maxRegisterBody = 64 << 10
)

type (
	machineKeyCtx struct{}
	sourceAddrCtx struct{}
)

// sourceAddr returns the client's IP address recorded at the Noise upgrade
// (the zero Addr if unknown).
func sourceAddr(ctx context.Context) netip.Addr {
	a, _ := ctx.Value(sourceAddrCtx{}).(netip.Addr)
	return a
}

// serveKey answers GET /key with the persistent Noise public key.
func (s *Server) serveKey(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(&tailcfg.OverTLSPublicKeyResponse{PublicKey: s.cfg.MachineKey.Public()})
}

// serveNoiseUpgrade upgrades /ts2021 to a Noise connection and serves
// HTTP/2 over it, with the client's machine key in each request context.
func (s *Server) serveNoiseUpgrade(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		http.Error(w, "POST or GET required", http.StatusMethodNotAllowed)
		return
	}
	conn, err := controlhttpserver.AcceptHTTP(r.Context(), w, r, s.cfg.MachineKey, nil)
	if err != nil {
		s.log.Debug("noise upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	defer conn.Close()
	// Hijacked connections outlive http.Server.Shutdown; track them so
	// Close ends them and clients reconnect to whatever serves next.
	if !s.trackConn(conn, true) {
		return
	}
	defer s.trackConn(conn, false)
	inner := http.NewServeMux()
	inner.HandleFunc("POST /machine/register", s.withMachineKey(s.serveRegister))
	inner.HandleFunc("POST /machine/map", s.withMachineKey(s.serveMap))
	inner.HandleFunc("/machine/update-health", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, io.LimitReader(r.Body, maxBody))
		w.WriteHeader(http.StatusNoContent)
	})
	inner.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// Every route must write a status: an empty 200 reads as EOF to
		// the client, which then retries forever.
		http.Error(w, "not implemented by devmesh: "+r.URL.Path, http.StatusNotImplemented)
	})
	ctx := context.WithValue(r.Context(), machineKeyCtx{}, conn.Peer())
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		ctx = context.WithValue(ctx, sourceAddrCtx{}, ap.Addr().Unmap())
	}
	var h2 http2.Server
	h2.ServeConn(conn, &http2.ServeConnOpts{Context: ctx, BaseConfig: &http.Server{Handler: inner}})
}

// trackConn adds (or removes) a live Noise connection. Adding fails once
// the server is closed.
func (s *Server) trackConn(c io.Closer, add bool) bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if !add {
		delete(s.conns, c)
		return true
	}
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) withMachineKey(h func(http.ResponseWriter, *http.Request, key.MachinePublic)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		mk, ok := r.Context().Value(machineKeyCtx{}).(key.MachinePublic)
		if !ok || mk.IsZero() {
			http.Error(w, "no machine key", http.StatusUnauthorized)
			return
		}
		h(w, r, mk)
	}
}

func decodeBody(r *http.Request, v any) error {
	defer r.Body.Close()
	return json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(v)
}
