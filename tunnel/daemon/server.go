package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/devmesh/devmesh/node"
	"github.com/devmesh/devmesh/tunnel"
)

type peerUIDKey struct{}

// peerUIDResult is what withPeerUID learned about a connection.
type peerUIDResult struct {
	uid uint32
	err error
}

// withPeerUID records the connecting process's uid in the connection's
// context.
func withPeerUID(ctx context.Context, c net.Conn) context.Context {
	var r peerUIDResult
	if uc, ok := c.(*net.UnixConn); ok {
		r.uid, r.err = peerUID(uc)
	} else {
		r.err = errors.New("not a Unix socket connection")
	}
	return context.WithValue(ctx, peerUIDKey{}, r)
}

// allowed reports whether the connection's process may use the daemon:
// the daemon's own user, or root.
func allowed(ctx context.Context) (bool, string) {
	r, ok := ctx.Value(peerUIDKey{}).(peerUIDResult)
	if !ok || r.err != nil {
		return false, fmt.Sprintf("could not tell who connected: %v", r.err)
	}
	if r.uid == 0 || int(r.uid) == os.Getuid() {
		return true, ""
	}
	return false, fmt.Sprintf("uid %d may not use the devmesh daemon of uid %d", r.uid, os.Getuid())
}

func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, d.status()) })
	mux.HandleFunc("GET /v1/events", d.serveEvents)
	mux.HandleFunc("POST /v1/dial", d.serveDial)
	mux.HandleFunc("POST /v1/ping", d.servePing)
	mux.HandleFunc("POST /v1/reachable", d.serveReachable)
	mux.HandleFunc("GET /v1/netcheck", d.serveNetcheck)
	mux.HandleFunc("POST /v1/speedtest", d.serveSpeedtest)
	mux.HandleFunc("POST /v1/vpn/up", d.serveVPNUp)
	mux.HandleFunc("POST /v1/vpn/down", d.serveVPNDown)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("%s %s is not part of the daemon's API v%d (is the daemon older than this CLI?)", r.Method, r.URL.Path, APIVersion))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, why := allowed(r.Context()); !ok {
			d.log.Warn("refused a local API request", "why", why)
			writeError(w, http.StatusForbidden, CodeForbidden, why)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Error: msg, Code: code})
}

// queryTimeout reads the optional timeout parameter (default def, at
// most max).
func queryTimeout(r *http.Request, def, max time.Duration) (time.Duration, error) {
	s := r.URL.Query().Get("timeout")
	if s == "" {
		return def, nil
	}
	t, err := time.ParseDuration(s)
	if err != nil || t <= 0 {
		return 0, fmt.Errorf("bad timeout %q", s)
	}
	return min(t, max), nil
}

// queryIP reads the ip parameter: a tailnet address.
func queryIP(r *http.Request) (netip.Addr, error) {
	ip, err := netip.ParseAddr(r.URL.Query().Get("ip"))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bad ip %q", r.URL.Query().Get("ip"))
	}
	return ip, nil
}

// dialError maps a failed dial to a status and code.
func dialError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, node.ErrNoPeer):
		writeError(w, http.StatusNotFound, CodeNoPeer, err.Error())
	case node.IsRefused(err):
		writeError(w, http.StatusBadGateway, CodeRefused, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, CodeTimeout, err.Error())
	default:
		writeError(w, http.StatusBadGateway, CodeDialFailed, err.Error())
	}
}

// serveDial connects to a peer and hands the byte stream over to the
// requesting connection.
func (d *Daemon) serveDial(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	network, addr := q.Get("network"), q.Get("addr")
	if network == "" {
		network = "tcp"
	}
	if network != "tcp" {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "only network=tcp can be dialed through the daemon")
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), dialProtocol) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "dial needs Upgrade: "+dialProtocol)
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if _, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("bad addr %q: want host:port", addr))
		return
	}
	timeout, err := queryTimeout(r, 30*time.Second, 5*time.Minute)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	ip, err := d.peers.wait(ctx, host)
	if err != nil {
		dialError(w, err)
		return
	}
	n, err := d.nodeWait(ctx)
	if err != nil {
		dialError(w, err)
		return
	}
	remote, err := n.Dial(ctx, network, netip.AddrPortFrom(ip, mustPort(port)).String())
	if err != nil {
		dialError(w, err)
		return
	}
	defer remote.Close()
	local, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer local.Close()
	d.streams.Add(1)
	defer d.streams.Done()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", dialProtocol)
	if err := brw.Flush(); err != nil {
		return
	}
	// Bytes the client sent after its request are in brw's reader.
	var from io.Reader = local
	if n := brw.Reader.Buffered(); n > 0 {
		buf, _ := brw.Reader.Peek(n)
		from = io.MultiReader(strings.NewReader(string(buf)), local)
	}
	stop := context.AfterFunc(r.Context(), func() { local.Close(); remote.Close() })
	defer stop()
	splice(local, from, remote)
}

func mustPort(s string) uint16 {
	p, _ := strconv.ParseUint(s, 10, 16)
	return uint16(p)
}

type closeWriter interface{ CloseWrite() error }

// splice copies both ways until both directions end, passing each
// half-close on.
func splice(local net.Conn, fromLocal io.Reader, remote net.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(remote, fromLocal)
		if cw, ok := remote.(closeWriter); ok {
			cw.CloseWrite()
		} else {
			remote.Close()
		}
	}()
	io.Copy(local, remote)
	if cw, ok := local.(closeWriter); ok {
		cw.CloseWrite()
	} else {
		local.Close()
	}
	<-done
}

func (d *Daemon) servePing(w http.ResponseWriter, r *http.Request) {
	ip, err := queryIP(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	timeout, err := queryTimeout(r, 5*time.Second, time.Minute)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	n, err := d.nodeWait(ctx)
	if err != nil {
		dialError(w, err)
		return
	}
	res, err := n.Ping(ctx, ip)
	if err != nil {
		dialError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (d *Daemon) serveReachable(w http.ResponseWriter, r *http.Request) {
	ip, err := queryIP(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	n, err := d.nodeWait(r.Context())
	if err != nil {
		dialError(w, err)
		return
	}
	if err := n.WaitReachable(r.Context(), ip); err != nil {
		writeError(w, http.StatusGatewayTimeout, CodeTimeout, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (d *Daemon) serveNetcheck(w http.ResponseWriter, r *http.Request) {
	n, err := d.nodeWait(r.Context())
	if err != nil {
		dialError(w, err)
		return
	}
	dm, err := n.DERPMap(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, CodeInternal, fmt.Sprintf("get the relay map: %v", err))
		return
	}
	rep, err := node.Netcheck(r.Context(), dm, d.log)
	if err != nil {
		writeError(w, http.StatusInternalServerError, CodeInternal, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (d *Daemon) serveSpeedtest(w http.ResponseWriter, r *http.Request) {
	ip, err := queryIP(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	q := r.URL.Query()
	dir := map[string]byte{"down": tunnel.Download, "up": tunnel.Upload}[q.Get("direction")]
	dur, derr := time.ParseDuration(q.Get("duration"))
	if dir == 0 || derr != nil || dur <= 0 || dur > tunnel.MaxSpeedtestDuration {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("want direction=down|up and a duration up to %v", tunnel.MaxSpeedtestDuration))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	n, err := d.nodeWait(ctx)
	if err != nil {
		dialError(w, err)
		return
	}
	conn, err := tunnel.Dial(ctx, n, "tcp", ip, tunnel.SpeedtestPort)
	if err != nil {
		dialError(w, err)
		return
	}
	res, err := tunnel.RunSpeedtest(r.Context(), conn, dir, dur, nil)
	if err != nil {
		writeError(w, http.StatusBadGateway, CodeDialFailed, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// serveEvents streams the peer set: at once, then at each change.
func (d *Daemon) serveEvents(w http.ResponseWriter, r *http.Request) {
	d.streams.Add(1)
	defer d.streams.Done()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	for {
		state, peers, changed := d.peers.snapshot()
		if peers == nil {
			peers = []node.Peer{}
		}
		if enc.Encode(Event{Time: time.Now(), State: state, Peers: peers}) != nil || rc.Flush() != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		}
	}
}
