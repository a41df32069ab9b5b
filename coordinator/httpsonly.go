package coordinator

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/web"
)

// httpsOnly guards the plain-HTTP side of the port when the access URL is
// https: the REST API and the login page, which carry passwords and
// tokens, answer only with where to go instead; the dashboard's pages
// redirect there. The control plane (/key,
// /ts2021: the Noise protocol encrypts and authenticates by itself),
// health checks and the relay's probes stay reachable.
func httpsOnly(next http.Handler, accessURL string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if web.IsPagePath(p) {
			// The dashboard: send the browser to the same page over HTTPS.
			target := strings.TrimRight(accessURL, "/") + r.URL.RequestURI()
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, target, http.StatusPermanentRedirect)
			} else {
				http.Error(w, "this coordinator serves its dashboard over HTTPS only: use "+accessURL, http.StatusForbidden)
			}
			return
		}
		if !strings.HasPrefix(p, "/api/") && !strings.HasPrefix(p, "/login/") {
			next.ServeHTTP(w, r)
			return
		}
		msg := "this coordinator serves its API and login page over HTTPS only: use " + accessURL
		if strings.HasPrefix(p, "/api/") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(client.Error{Code: client.CodeHTTPSRequired, Message: msg})
			return
		}
		http.Error(w, msg, http.StatusForbidden)
	})
}
