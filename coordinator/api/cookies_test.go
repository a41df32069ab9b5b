package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/devmesh/devmesh/coordinator/api"
	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/client"
)

// cookieSite serves the API plus minimal login and logout handlers the
// way the dashboard uses StartSession and EndSession.
func cookieSite(t *testing.T, srv *apitest.Server, tls bool) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", srv.API.Handler())
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if _, err := srv.API.StartSession(w, r, r.PostFormValue("username"), r.PostFormValue("password")); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
		}
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := srv.API.EndSession(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
		}
	})
	mux.HandleFunc("GET /csrf", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, srv.API.CSRFToken(r))
	})
	mux.HandleFunc("POST /guarded", func(w http.ResponseWriter, r *http.Request) {
		if !srv.API.CheckCSRF(r) {
			http.Error(w, "csrf", http.StatusForbidden)
		}
	})
	var hs *httptest.Server
	if tls {
		hs = httptest.NewTLSServer(mux)
	} else {
		hs = httptest.NewServer(mux)
	}
	t.Cleanup(hs.Close)
	return hs
}

// browserLogin logs in through the login form and returns the session
// cookie the response set.
func browserLogin(t *testing.T, hc *http.Client, base, user, pw string) *http.Cookie {
	t.Helper()
	resp, err := hc.PostForm(base+"/login", url.Values{"username": {user}, "password": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %s", resp.Status)
	}
	for _, c := range resp.Cookies() {
		if c.Name == api.SessionCookie {
			return c
		}
	}
	t.Fatalf("login set no %s cookie: %v", api.SessionCookie, resp.Header["Set-Cookie"])
	return nil
}

// send makes a request with the session cookie and optional headers.
func send(t *testing.T, hc *http.Client, method, u string, ck *http.Cookie, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ck != nil {
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestCookieSessionAttributes(t *testing.T) {
	srv := apitest.New(t)
	srv.Bootstrap(t, "admin", adminPW)
	plain := cookieSite(t, srv, false)
	ck := browserLogin(t, plain.Client(), plain.URL, "admin", adminPW)
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure {
		t.Errorf("plain HTTP cookie: HttpOnly=%v SameSite=%v Path=%q Secure=%v; want HttpOnly, Lax, /, not Secure",
			ck.HttpOnly, ck.SameSite, ck.Path, ck.Secure)
	}
	if !strings.HasPrefix(ck.Value, "dms") {
		t.Errorf("cookie value %q is not a session token", ck.Value)
	}
	tls := cookieSite(t, srv, true)
	ck = browserLogin(t, tls.Client(), tls.URL, "admin", adminPW)
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
		t.Errorf("TLS cookie: Secure=%v HttpOnly=%v SameSite=%v; want all set", ck.Secure, ck.HttpOnly, ck.SameSite)
	}
}

func TestCookieAuthAndCSRF(t *testing.T) {
	srv := apitest.New(t)
	admin := srv.Bootstrap(t, "admin", adminPW)
	site := cookieSite(t, srv, false)
	hc := site.Client()
	ck := browserLogin(t, hc, site.URL, "admin", adminPW)

	if st, body := send(t, hc, "GET", site.URL+"/api/v1/users/me", ck, ""); st != 200 || !strings.Contains(body, `"admin"`) {
		t.Fatalf("GET me with cookie: %d %s", st, body)
	}
	_, csrf := send(t, hc, "GET", site.URL+"/csrf", ck, "")
	if len(csrf) < 40 {
		t.Fatalf("CSRF token %q too short", csrf)
	}
	if _, none := send(t, hc, "GET", site.URL+"/csrf", nil, ""); none != "" {
		t.Fatalf("CSRF token without a session: %q", none)
	}

	before := countRows(t, srv, "api_tokens")
	create := `{"name":"ci"}`
	json := "Content-Type"
	for _, tc := range []struct {
		name string
		hdr  []string
	}{
		{"missing", []string{json, "application/json"}},
		{"wrong", []string{json, "application/json", api.CSRFHeader, csrf[:len(csrf)-2] + "AA"}},
		{"empty", []string{json, "application/json", api.CSRFHeader, ""}},
	} {
		st, body := send(t, hc, "POST", site.URL+"/api/v1/tokens", ck, create, tc.hdr...)
		if st != http.StatusForbidden || !strings.Contains(body, client.CodeCSRF) {
			t.Errorf("%s CSRF token: %d %s, want 403 %s", tc.name, st, body, client.CodeCSRF)
		}
	}
	if st, _ := send(t, hc, "DELETE", site.URL+"/api/v1/tokens/x", ck, ""); st != http.StatusForbidden {
		t.Errorf("DELETE without CSRF token: %d, want 403", st)
	}
	if n := countRows(t, srv, "api_tokens"); n != before {
		t.Fatalf("refused requests changed the tokens table: %d rows, want %d", n, before)
	}
	if st, body := send(t, hc, "POST", site.URL+"/api/v1/tokens", ck, create, json, "application/json", api.CSRFHeader, csrf); st != http.StatusCreated {
		t.Fatalf("POST with CSRF token: %d %s", st, body)
	}
	// Another session's token is refused too: tokens are per session.
	ck2 := browserLogin(t, hc, site.URL, "admin", adminPW)
	if st, _ := send(t, hc, "POST", site.URL+"/guarded", ck2, "", api.CSRFHeader, csrf); st != http.StatusForbidden {
		t.Errorf("CSRF token of another session: %d, want 403", st)
	}
	// HTML forms send it as a field.
	if st, _ := send(t, hc, "POST", site.URL+"/guarded", ck, api.CSRFField+"="+url.QueryEscape(csrf),
		json, "application/x-www-form-urlencoded"); st != 200 {
		t.Errorf("CSRF token as form field: %d, want 200", st)
	}
	// A bearer token needs no CSRF token, even with a cookie beside it.
	if st, body := send(t, hc, "POST", site.URL+"/api/v1/tokens", ck, `{"name":"ci2"}`, json, "application/json",
		"Authorization", "Bearer "+admin); st != http.StatusCreated {
		t.Errorf("bearer POST: %d %s", st, body)
	}
	// A bad bearer header does not fall back to the cookie.
	if st, _ := send(t, hc, "GET", site.URL+"/api/v1/users/me", ck, "", "Authorization", "Bearer nope"); st != 401 {
		t.Errorf("bad bearer with a good cookie: %d, want 401", st)
	}
}

func TestCookieRefusesAPIToken(t *testing.T) {
	srv := apitest.New(t)
	admin := srv.Bootstrap(t, "admin", adminPW)
	tok, err := srv.Client(t, admin).CreateToken(context.Background(), client.CreateTokenRequest{Name: "script"})
	if err != nil {
		t.Fatal(err)
	}
	site := cookieSite(t, srv, false)
	ck := &http.Cookie{Name: api.SessionCookie, Value: tok.Secret}
	if st, _ := send(t, site.Client(), "GET", site.URL+"/api/v1/users/me", ck, ""); st != 401 {
		t.Errorf("API token in the session cookie: %d, want 401", st)
	}
}

func TestLogoutRevokesSession(t *testing.T) {
	srv := apitest.New(t)
	srv.Bootstrap(t, "admin", adminPW)
	site := cookieSite(t, srv, false)
	hc := site.Client()
	ck := browserLogin(t, hc, site.URL, "admin", adminPW)
	_, csrf := send(t, hc, "GET", site.URL+"/csrf", ck, "")

	if st, _ := send(t, hc, "POST", site.URL+"/logout", ck, ""); st != http.StatusForbidden {
		t.Fatalf("logout without CSRF token: %d, want 403", st)
	}
	if st, _ := send(t, hc, "GET", site.URL+"/api/v1/users/me", ck, ""); st != 200 {
		t.Fatalf("session after refused logout: %d, want 200", st)
	}
	req, _ := http.NewRequest("POST", site.URL+"/logout", nil)
	req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	req.Header.Set(api.CSRFHeader, csrf)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("logout: %s", resp.Status)
	}
	cleared := false
	for _, c := range resp.Cookies() {
		cleared = cleared || (c.Name == api.SessionCookie && c.Value == "" && c.MaxAge < 0)
	}
	if !cleared {
		t.Errorf("logout did not clear the cookie: %v", resp.Header["Set-Cookie"])
	}
	if st, _ := send(t, hc, "GET", site.URL+"/api/v1/users/me", ck, ""); st != 401 {
		t.Errorf("the old cookie after logout: %d, want 401 (session revoked)", st)
	}
}

func TestLoginRefusesCrossOrigin(t *testing.T) {
	srv := apitest.New(t)
	srv.Bootstrap(t, "admin", adminPW)
	site := cookieSite(t, srv, false)
	st, body := send(t, site.Client(), "POST", site.URL+"/login", nil, "username=admin&password="+adminPW,
		"Content-Type", "application/x-www-form-urlencoded", "Origin", "https://evil.example")
	if st != http.StatusUnauthorized || !strings.Contains(body, "another site") {
		t.Errorf("cross-origin login: %d %q, want refused", st, body)
	}
	st, _ = send(t, site.Client(), "POST", site.URL+"/login", nil, "username=admin&password="+adminPW,
		"Content-Type", "application/x-www-form-urlencoded", "Origin", site.URL)
	if st != 200 {
		t.Errorf("same-origin login: %d, want 200", st)
	}
}

// TestReloginReplacesSession: logging in again from a browser with a
// session revokes that session instead of leaving it valid.
func TestReloginReplacesSession(t *testing.T) {
	srv := apitest.New(t)
	srv.Bootstrap(t, "admin", adminPW)
	site := cookieSite(t, srv, false)
	hc := site.Client()
	first := browserLogin(t, hc, site.URL, "admin", adminPW)
	req, _ := http.NewRequest("POST", site.URL+"/login", strings.NewReader("username=admin&password="+adminPW))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: first.Name, Value: first.Value})
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st, _ := send(t, hc, "GET", site.URL+"/api/v1/users/me", first, ""); st != 401 {
		t.Errorf("the replaced session: %d, want 401", st)
	}
	for _, c := range resp.Cookies() {
		if c.Name == api.SessionCookie {
			if st, _ := send(t, hc, "GET", site.URL+"/api/v1/users/me", c, ""); st != 200 {
				t.Errorf("the new session: %d, want 200", st)
			}
			return
		}
	}
	t.Fatal("the second login set no cookie")
}
