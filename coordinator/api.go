package coordinator

import "net/http"

// mountAPI mounts the REST API. (Wired to coordinator/api when it lands.)
func (s *Server) mountAPI(mux *http.ServeMux) error { return nil }
