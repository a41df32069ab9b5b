package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/devmesh/devmesh/coordinator/api"
	"github.com/devmesh/devmesh/coordinator/api/apitest"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/web"
)

const pw = "password-123"

// site is the API and the dashboard on one loopback server, as the
// coordinator mounts them.
type site struct {
	*apitest.Server
	URL   string
	admin string // the admin's bearer token
}

func newSite(t *testing.T) *site {
	t.Helper()
	srv := apitest.New(t)
	d, err := web.New(web.Options{API: srv.API, AccessURL: "http://devmesh.test"})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", srv.API.Handler())
	mux.Handle("/", d.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &site{Server: srv, URL: hs.URL, admin: srv.Bootstrap(t, "admin", pw)}
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see them.
type browser struct {
	t  *testing.T
	hc *http.Client
	s  *site
}

func (s *site) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, s: s, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, path string, form url.Values) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.s.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, resp.Header, string(raw)}
}

func (b *browser) login(user, password string) {
	b.t.Helper()
	p := b.do("POST", "/login", url.Values{"username": {user}, "password": {password}, "next": {"/tokens"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/tokens" {
		b.t.Fatalf("login as %s: %d %s, want 303 to /tokens", user, p.status, p.header.Get("Location"))
	}
}

var csrfRE = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

func (p page) csrf(t *testing.T) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("page has no csrf-token meta: %.300s", p.body)
	}
	return m[1]
}

func TestPagesNeedLogin(t *testing.T) {
	s := newSite(t)
	b := s.browser(t)
	for _, path := range []string{"/", "/tokens", "/@admin/x", "/admin/users"} {
		p := b.do("GET", path, nil)
		if p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login") {
			t.Errorf("GET %s logged out: %d %s, want 303 to /login", path, p.status, p.header.Get("Location"))
		}
	}
	p := b.do("GET", "/login", nil)
	if p.status != 200 || !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("login page: %d", p.status)
	}
	if got := p.header.Get("Content-Security-Policy"); got != web.CSP || !strings.Contains(got, "script-src 'self'") {
		t.Errorf("CSP = %q", got)
	}
	if strings.Contains(p.body, "<script>") || strings.Contains(p.body, "style=") || strings.Contains(p.body, "<style") {
		t.Error("login page has inline script or style")
	}
	bad := b.do("POST", "/login", url.Values{"username": {"admin"}, "password": {"wrong-password"}})
	if bad.status != http.StatusUnauthorized || !strings.Contains(bad.body, "wrong username or password") {
		t.Errorf("wrong password: %d", bad.status)
	}
	// An open redirect through ?next= is refused.
	evil := b.do("POST", "/login", url.Values{"username": {"admin"}, "password": {pw}, "next": {"//evil.example/"}})
	if evil.status != http.StatusSeeOther || evil.header.Get("Location") != "/" {
		t.Errorf("next=//evil.example: %d to %q, want / ", evil.status, evil.header.Get("Location"))
	}
}

func TestDashboardPages(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	if _, err := s.Client(t, s.admin).CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "laptop", External: true}); err != nil {
		t.Fatal(err)
	}
	b := s.browser(t)
	b.login("admin", pw)
	for path, want := range map[string]string{
		"/":                 `href="/@admin/laptop"`,
		"/@admin/laptop":    `href="/@admin/laptop/terminal"`,
		"/tokens":           `data-form="create-token"`,
		"/templates":        "Templates",
		"/workspaces/new":   "New workspace",
		"/admin/users":      `<td>admin</td>`,
		"/admin/workspaces": `href="/@admin/laptop"`,
	} {
		p := b.do("GET", path, nil)
		if p.status != 200 || !strings.Contains(p.body, want) {
			t.Errorf("GET %s: %d, want 200 with %q in:\n%.600s", path, p.status, want, p.body)
			continue
		}
		if p.header.Get("Content-Security-Policy") != web.CSP {
			t.Errorf("GET %s: no CSP", path)
		}
		p.csrf(t)
	}
	if p := b.do("GET", "/nope/at/all", nil); p.status != 404 {
		t.Errorf("unknown page: %d, want 404", p.status)
	}
}

func TestMemberGets404ForOthersWorkspaces(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	s.CreateUser(t, s.admin, "bob", pw, "member")
	carol := s.CreateUser(t, s.admin, "carol", pw, "member")
	if _, err := s.Client(t, carol).CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "secret", External: true}); err != nil {
		t.Fatal(err)
	}
	bob := s.browser(t)
	bob.login("bob", pw)
	exists := bob.do("GET", "/@carol/secret", nil)
	missing := bob.do("GET", "/@carol/nothing", nil)
	if exists.status != 404 || missing.status != 404 {
		t.Fatalf("bob on carol's pages: %d (exists), %d (missing); want 404 both", exists.status, missing.status)
	}
	if strings.Contains(exists.body, "secret") {
		t.Error("the 404 page names the workspace")
	}
	if p := bob.do("GET", "/admin/workspaces", nil); p.status != 404 {
		t.Errorf("member on the admin pages: %d, want 404", p.status)
	}
	if p := bob.do("GET", "/", nil); p.status != 200 || strings.Contains(p.body, "secret") {
		t.Errorf("bob's list: %d, shows carol's workspace: %v", p.status, strings.Contains(p.body, "secret"))
	}
	carolB := s.browser(t)
	carolB.login("carol", pw)
	if p := carolB.do("GET", "/@carol/secret", nil); p.status != 200 {
		t.Errorf("carol on her own workspace: %d", p.status)
	}
	admin := s.browser(t)
	admin.login("admin", pw)
	if p := admin.do("GET", "/@carol/secret", nil); p.status != 200 || !strings.Contains(p.body, "carol/") {
		t.Errorf("admin on carol's workspace: %d", p.status)
	}
}

func TestLogoutForm(t *testing.T) {
	s := newSite(t)
	b := s.browser(t)
	b.login("admin", pw)
	home := b.do("GET", "/", nil)
	csrf := home.csrf(t)
	if p := b.do("POST", "/logout", url.Values{}); p.status != http.StatusForbidden {
		t.Fatalf("logout without token: %d, want 403", p.status)
	}
	if p := b.do("GET", "/", nil); p.status != 200 {
		t.Fatalf("still logged in after refused logout: %d", p.status)
	}
	if p := b.do("POST", "/logout", url.Values{api.CSRFField: {csrf}}); p.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", p.status)
	}
	if p := b.do("GET", "/", nil); p.status != http.StatusSeeOther {
		t.Fatalf("after logout: %d, want a redirect to the login page", p.status)
	}
}

func TestStaticAssets(t *testing.T) {
	s := newSite(t)
	b := s.browser(t)
	login := b.do("GET", "/login", nil)
	m := regexp.MustCompile(`src="(/static/app\.js\?v=[0-9a-f]+)"`).FindStringSubmatch(login.body)
	if m == nil {
		t.Fatal("login page does not load a versioned app.js")
	}
	p := b.do("GET", m[1], nil)
	if p.status != 200 || !strings.Contains(p.header.Get("Content-Type"), "javascript") ||
		!strings.Contains(p.header.Get("Cache-Control"), "immutable") || !strings.Contains(p.body, "X-CSRF-Token") {
		t.Errorf("versioned app.js: %d %q %q", p.status, p.header.Get("Content-Type"), p.header.Get("Cache-Control"))
	}
	if p := b.do("GET", "/static/app.css", nil); p.status != 200 || p.header.Get("Cache-Control") != "no-cache" {
		t.Errorf("unversioned app.css: %d %q", p.status, p.header.Get("Cache-Control"))
	}
}

// TestTerminalDispatch: /@OWNER/WS/terminal goes to Options.Terminal
// with the path values set; other paths do not.
func TestTerminalDispatch(t *testing.T) {
	srv := apitest.New(t)
	var got []string
	term := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.PathValue("owner")+"|"+r.PathValue("workspace"))
	})
	d, err := web.New(web.Options{API: srv.API, Terminal: term})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/@alice/dev/terminal", "/@alice/terminal", "/alice/dev/terminal", "/@alice/dev/x/terminal", "/@alice/dev"} {
		rec := httptest.NewRecorder()
		d.Handler().ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
	}
	if len(got) != 1 || got[0] != "alice|dev" {
		t.Errorf("terminal handler saw %q, want only alice|dev", got)
	}
}
