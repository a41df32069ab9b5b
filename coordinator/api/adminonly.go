package api

import "net/http"

// AdminOnly serves h only to requests bearing an admin's token (session
// or API token); others get the API's 401 or 403. The coordinator guards
// /metrics and /debug/pprof with it on its main listener.
func (a *API) AdminOnly(h http.Handler) http.Handler {
	return a.admin(func(w http.ResponseWriter, r *http.Request, _ caller) error {
		setCommonHeaders(w)
		h.ServeHTTP(w, r)
		return nil
	})
}
