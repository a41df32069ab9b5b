package api_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/client"
)

const (
	adminPW  = "admin-password-1"
	memberPW = "member-password-1"
)

// rawResponse is an API response read in full.
type rawResponse struct {
	status int
	header http.Header
	body   string
}

// apiErr decodes the JSON error body.
func (r rawResponse) apiErr(t *testing.T) client.Error {
	t.Helper()
	var e client.Error
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	return e
}

// call sends a raw request to the server, so tests can send what the
// typed client never would.
func call(t *testing.T, srv *apitest.Server, method, path, token, body string) rawResponse {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// wantAPIError asserts err is a *client.Error with status and code.
func wantAPIError(t *testing.T, err error, status int, code string) *client.Error {
	t.Helper()
	e, ok := err.(*client.Error)
	if !ok {
		t.Fatalf("err = %v (%T), want *client.Error %d %s", err, err, status, code)
	}
	if e.Status != status || e.Code != code {
		t.Fatalf("err = %d %s %q, want %d %s", e.Status, e.Code, e.Message, status, code)
	}
	return e
}

// countRows counts a table's rows through a second connection to the
// database file, to check what the API did (or did not) write.
func countRows(t *testing.T, srv *apitest.Server, table string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+srv.DBPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
