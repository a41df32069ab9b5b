package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/devmesh/devmesh/coordinator/store"
)

// routes builds the one handler served on both plain HTTP and TLS.
func (s *Server) routes() (http.Handler, error) {
	mux := http.NewServeMux()
	ctl := s.control.Handler()
	mux.Handle("/key", ctl)
	mux.Handle("/ts2021", ctl)
	mux.Handle("/login/node/", ctl)
	rh := s.relay.Handler()
	mux.Handle("/derp", rh)
	mux.Handle("/derp/", rh)
	mux.Handle("/generate_204", rh)
	mux.Handle("GET /bin/{file}", newBinaries(s.devmeshBin, s.binariesDir(), s.log))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	if err := s.mountAPI(mux); err != nil {
		return nil, err
	}
	return mux, nil
}

// checkPassword is the login page's credential check; the API supplies
// the real one (with rate limits) once mounted.
func (s *Server) checkPassword(ctx context.Context, r *http.Request, username, password string) (store.User, error) {
	if s.passwordChecker == nil {
		return store.User{}, errors.New("login is not available")
	}
	return s.passwordChecker(ctx, r, username, password)
}

// serveReady is /readyz: 200 when the database answers with every
// migration applied and the server is not shutting down, else 503 with
// the reason (for load balancers and orchestrators; /healthz only says
// the process serves HTTP).
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.closing.Load() {
		http.Error(w, "not ready: shutting down", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ready(ctx); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}
