package web_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/internal/browsertest"
	"github.com/devmesh/devmesh/provision"
)

// TestBrowserDashboard drives the dashboard in headless Chromium against
// a real coordinator: log in through the form, create a workspace from
// the `local` template through the page, watch its build log stream in
// and the workspace come up running; check that a state change without
// the page's CSRF token is refused while one with it works; log out, log
// in as a second user, and get 404s for the first user's workspace. It
// saves screenshots of the main pages at desktop and phone widths (see
// browsertest.Dir).
//
// The workspace part needs terraform and DEVMESH_BIN (a devmesh binary,
// as `make test` sets it); without them only the rest runs.
func TestBrowserDashboard(t *testing.T) {
	chromium := browsertest.Chromium(t) // skip early, before starting a coordinator
	_ = chromium
	bin := os.Getenv("DEVMESH_BIN")
	_, tfErr := provision.CheckTerraform(context.Background(), "")
	withBuilds := bin != "" && tfErr == nil
	var opts []coordtest.Option
	if withBuilds {
		opts = append(opts, coordtest.WithDevmeshBinary(bin))
	} else {
		opts = append(opts, coordtest.WithoutProvisioning())
	}
	coord := coordtest.Start(t, opts...)
	ctx := context.Background()
	anon, _ := client.New(coord.URL(), "")
	sess, err := anon.CreateFirstUser(ctx, client.LoginRequest{Username: "alice", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := client.New(coord.URL(), sess.Token)
	if _, err := alice.CreateUser(ctx, client.CreateUserRequest{Username: "bob", Password: pw}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "laptop", External: true}); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	b := browsertest.New(t, 150*time.Second) // a bound for a loaded CI machine; ~20 s here
	base := coord.URL()
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(b, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		browsertest.Screenshot(t, b, name, browsertest.Phone, browsertest.Desktop)
	}

	run("open the login page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#username")))
	shot("login")
	// The Tailscale device-login page shares the stylesheet (here with an
	// expired link: the error, no form).
	run("open a device-login page", chromedp.Navigate(base+"/login/node/0123456789abcdef"), chromedp.WaitVisible(chromedp.CSS("#error")))
	color, err := chromedp.Run(b, chromedp.Evaluate[string](`getComputedStyle(document.getElementById("error")).borderTopColor`))
	if err != nil || color != "rgb(198, 40, 40)" {
		t.Errorf("device-login page's error border %q (%v): the dashboard's stylesheet did not apply", color, err)
	}
	shot("device-login")
	run("back to the login page", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.CSS("#username")))
	login(t, b, "alice")
	shot("workspaces")

	if withBuilds {
		createLocalWorkspace(t, b, alice, base)
	} else {
		t.Logf("skipping the workspace build part: DEVMESH_BIN=%q, terraform: %v", bin, tfErr)
	}

	for _, p := range []struct{ path, name, ready string }{
		{"/@alice/laptop", "workspace-external", "#agents-h"},
		{"/templates", "templates", "h1"},
		{"/tokens", "tokens", "#tok-name"},
		{"/admin/users", "admin-users", "#users"},
		{"/workspaces/new", "new-workspace", "h1"},
	} {
		run("open "+p.path, chromedp.Navigate(base+p.path), chromedp.WaitVisible(chromedp.CSS(p.ready)))
		shot(p.name)
	}

	// CSRF: the browser sends the cookie by itself; a state change needs
	// the page's token too.
	fetchStatus := func(token string) int {
		t.Helper()
		js := fmt.Sprintf(`fetch("/api/v1/tokens", {method: "POST", credentials: "same-origin",
			headers: {"Content-Type": "application/json", "X-CSRF-Token": %q},
			body: JSON.stringify({name: "from-page-" + Date.now()})}).then(r => r.status)`, token)
		st, err := chromedp.Run(b, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := fetchStatus(""); st != 403 {
		t.Errorf("POST without the CSRF token from the page: %d, want 403", st)
	}
	if st := fetchStatus("forged"); st != 403 {
		t.Errorf("POST with a wrong CSRF token: %d, want 403", st)
	}
	token, err := chromedp.Run(b, chromedp.Evaluate[string](`document.querySelector('meta[name="csrf-token"]').content`))
	if err != nil {
		t.Fatal(err)
	}
	if st := fetchStatus(token); st != 201 {
		t.Errorf("POST with the page's CSRF token: %d, want 201", st)
	}

	// Log out, log in as bob: alice's workspace pages are 404s.
	run("log out", chromedp.Click(chromedp.CSS("form.logout button")), chromedp.WaitVisible(chromedp.CSS("#username")))
	login(t, b, "bob")
	for _, path := range []string{"/@alice/laptop", "/@alice/dev", "/@alice/nothing"} {
		run("bob opens "+path, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS("#error-message")))
		h1, err := chromedp.Run(b, chromedp.Text(chromedp.CSS("h1")))
		if err != nil || h1 != "404" {
			t.Errorf("bob on %s: heading %q (%v), want 404", path, h1, err)
		}
	}
	shot("not-found")
	t.Logf("browser part took %v; screenshots in %s", time.Since(start).Round(time.Millisecond), browsertest.Dir(t))
}

// login fills in the login form and waits for the workspace list.
func login(t *testing.T, b context.Context, user string) {
	t.Helper()
	err := chromedp.Do(b,
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), pw),
		chromedp.Click(chromedp.CSS("form.stack button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("form.logout")),
	)
	if err != nil {
		t.Fatalf("log in as %s: %v", user, err)
	}
}

// createLocalWorkspace pushes the local template (its workspaces under a
// temporary directory), creates workspace "dev" through the page, and
// watches the build log stream until the workspace runs with its agent
// connected.
func createLocalWorkspace(t *testing.T, b context.Context, alice *client.Client, base string) {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	tpl := localTemplate(t, root)
	archive, err := provision.Pack(tpl, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.PushTemplate(ctx, "local", archive, "browser test"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killAgents(root) })

	err = chromedp.Do(b,
		chromedp.Navigate(base+"/workspaces/new?template=local"),
		chromedp.WaitVisible(chromedp.CSS("#ws-name")),
		chromedp.SendKeys(chromedp.CSS("#ws-name"), "dev"),
		chromedp.SetValue(chromedp.CSS("#param-region"), "us"),
		chromedp.Click(chromedp.CSS(`input[data-param="dotfiles"]`)),
		chromedp.Clear(chromedp.CSS("#param-cpus")),
		chromedp.SendKeys(chromedp.CSS("#param-cpus"), "4"),
		chromedp.Click(chromedp.CSS(`form[data-form="create-workspace"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#build-log")),
	)
	if err != nil {
		t.Fatalf("create a workspace through the page: %v", err)
	}
	loc, _ := chromedp.Run(b, chromedp.Location())
	if !strings.HasSuffix(loc, "/@alice/dev") {
		t.Fatalf("after create: at %s, want /@alice/dev", loc)
	}
	// Mark the log as the page first showed it; the mark is gone after
	// the page reloads, so seeing the log grow past it proves the lines
	// were streamed into this page.
	done, err := chromedp.Run(b, chromedp.Evaluate[string](`(() => { const p = document.getElementById("build-log");
		window.__mark = p.textContent.length; return p.dataset.done; })()`))
	if err != nil {
		t.Fatal(err)
	}
	if done != "false" {
		t.Fatalf("the build had finished before the page loaded (data-done=%s); nothing to stream", done)
	}
	streamed := time.Now()
	if _, err := chromedp.Run(b, chromedp.Poll[bool](`window.__mark !== undefined &&
		document.getElementById("build-log").textContent.length > window.__mark`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Fatalf("no build log line streamed into the page: %v", err)
	}
	t.Logf("first streamed log line after %v", time.Since(streamed).Round(time.Millisecond))
	browsertest.Screenshot(t, b, "workspace-building", browsertest.Desktop)
	// When the build ends the page reloads and shows the final state; the
	// agent's state is refreshed in place.
	if err := waitJS(b, `(() => {
		const s = document.getElementById("ws-state"), a = document.querySelector("[data-agent-status]");
		return !!s && s.textContent === "running" && !!a && a.textContent === "connected"; })()`, 60*time.Second); err != nil {
		state, _ := chromedp.Run(b, chromedp.Evaluate[string](`document.getElementById("main").innerText`))
		t.Fatalf("workspace not running with its agent connected: %v\npage:\n%s", err, state)
	}
	log, err := chromedp.Run(b, chromedp.Text(chromedp.CSS("#build-log")))
	if err != nil || !strings.Contains(log, "Apply complete") {
		t.Errorf("final build log lacks terraform's \"Apply complete\" (%v):\n%s", err, log)
	}
	params, err := chromedp.Run(b, chromedp.Text(chromedp.CSS("#parameters")))
	if err != nil || !strings.Contains(params, "Region\nus") || !strings.Contains(params, "dotfiles\ntrue") || !strings.Contains(params, "cpus (mutable)\n4") {
		t.Errorf("parameters on the workspace page (%v):\n%s", err, params)
	}
	browsertest.Screenshot(t, b, "workspace", browsertest.Phone, browsertest.Desktop)

	// Restart through its button (it asks first): a stop build, then the
	// page itself queues the start once the stop succeeded.
	if err := chromedp.Do(b,
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true; undefined`, chromedp.EvalIgnoreExceptions),
		chromedp.Click(chromedp.CSS("button[data-restart]")),
	); err != nil {
		t.Fatalf("click Restart: %v", err)
	}
	restarted := time.Now()
	if err := waitJS(b, `(() => {
		const n = document.querySelector("#builds tbody tr td"), s = document.getElementById("ws-state"),
			a = document.querySelector("[data-agent-status]");
		return !!n && n.textContent === "3" && !!s && s.textContent === "running" && !!a && a.textContent === "connected"; })()`,
		60*time.Second); err != nil {
		page, _ := chromedp.Run(b, chromedp.Evaluate[string](`document.getElementById("main").innerText`))
		t.Fatalf("restart through the page: %v\npage:\n%s", err, page)
	}
	t.Logf("restart (stop build, start build, agent connected) took %v", time.Since(restarted).Round(time.Millisecond))
	bs, err := alice.ListBuilds(ctx, "dev")
	if err != nil || len(bs) != 3 || bs[1].Transition != client.TransitionStop || bs[2].Transition != client.TransitionStart {
		t.Errorf("builds after restart: %+v (%v), want start, stop, start", bs, err)
	}
}

// waitJS evaluates expr every 100 ms until it is true, across page
// loads (an evaluation cut by a reload is retried).
func waitJS(b context.Context, expr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(b, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if b.Err() != nil {
			return b.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not true after %v (last error: %v): %s", timeout, last, expr)
}

// testParameters are added to the local template, so that the create
// form has one of each kind of field.
const testParameters = `
data "devmesh_parameter" "region" {
  name         = "region"
  display_name = "Region"
  description  = "Where the workspace runs."
  default      = "eu"
  option {
    name  = "Europe"
    value = "eu"
  }
  option {
    name  = "United States"
    value = "us"
  }
}

data "devmesh_parameter" "dotfiles" {
  name    = "dotfiles"
  type    = "bool"
  default = false
}

data "devmesh_parameter" "cpus" {
  name    = "cpus"
  type    = "number"
  default = 2
  mutable = true
}
`

// localTemplate copies examples/templates/local with its workspaces
// directory defaulting to root, and testParameters.
func localTemplate(t *testing.T, root string) string {
	t.Helper()
	src := filepath.Join("..", "..", "examples", "templates", "local")
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "main.tf" {
			s := strings.Replace(string(b), `default     = ""`, `default     = `+strconv.Quote(root), 1)
			if s == string(b) {
				t.Fatal("local template: workspaces_dir default not found")
			}
			b = []byte(s + testParameters)
		}
		info, _ := e.Info()
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// killAgents kills the local agents left under root.
func killAgents(root string) {
	pids, _ := filepath.Glob(filepath.Join(root, "*", "agent.pid"))
	for _, f := range pids {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			if p, err := os.FindProcess(pid); err == nil {
				p.Kill()
			}
		}
	}
}
