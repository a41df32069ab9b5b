package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net/http"

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
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		pin := ""
		if fp := s.agentFingerprint(); fp != "" {
			pin = " --fingerprint " + fp
		}
		fmt.Fprintf(w, "devmesh coordinator\n\nLog in with: devmesh login %s --username YOU%s\n", s.accessURL, pin)
	})
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
